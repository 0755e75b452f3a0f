package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// Tolerances (SIMD path vs generic twin, or vs a float64 reference):
//
//   - Dot, DotF32Bytes, DotF16: a sum of n products rounded in float32 has error at most
//     k*eps*sum|a_i*b_i| where k is the longest chain of additions behind any term: the
//     generic path has n/4+2, the SIMD paths ceil(n/lanes)+7 (lanes = 64 on AVX-512,
//     32 on AVX2, plus the reduction tree), eps = 2^-24. Each path is checked against the
//     float64 dot product with its own bound, and with small integer inputs (every partial
//     sum exact) all paths must agree exactly.
//   - Axpy: identical operations (multiply, then add) on every path: exact.
//   - RMSNorm: the float64 sum of squares only changes order, so the scale can differ by
//     one float32 rounding: relative 2.5e-7 (about 2 ulp) per element.
//   - SiLUMul: the polynomial exp is within ~2 ulp of e^x; with the division and the two
//     multiplications the result is within relative 2e-6 of the float64-exp twin. AVX2
//     flushes e^-|g| below 2^-126 to zero, which changes results below |g|*2^-126 in
//     magnitude: absolute 1e-30*|up| covers it.
//   - Softmax: relative 1e-5 per element (exp polynomial ~2 ulp, float32 lane sums of at
//     most 4096 terms per chunk ~1e-6, x-max rounding identical on both sides), plus
//     absolute 1e-37 for outputs near the float32 underflow threshold (AVX2 flushes
//     below 2^-126).
const (
	eps32      = 1.0 / (1 << 24)
	rmsTol     = 2.5e-7
	siluRelTol = 2e-6
	siluAbsTol = 1e-30
	smRelTol   = 1e-5
	smAbsTol   = 1e-37
)

// eachISA runs f once per ISA this CPU supports, with that ISA active.
func eachISA(t *testing.T, f func(t *testing.T, isa ISA)) {
	t.Helper()
	for i := Generic; i < numISA; i++ {
		if !Supported(i) {
			t.Logf("%s: not supported here, skipped", i)
			continue
		}
		prev, err := SetISA(i)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(i.String(), func(t *testing.T) { f(t, i) })
		SetISA(prev)
	}
}

var testLengths = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 129, 1000, 4099}

// dotChain is the longest addition chain of a dot product of length n on the active path.
func dotChain(n int) float64 {
	switch floatLanes() {
	case 16:
		return float64((n+63)/64 + 7)
	case 8:
		return float64((n+31)/32 + 7)
	}
	return float64(n/4 + 2)
}

func floatLanes() int {
	switch Active() {
	case AVX512:
		if !purego && isAMD64 {
			return 16
		}
	case AVX2, AVXVNNI:
		if !purego && isAMD64 {
			return 8
		}
	}
	return 0
}

func checkDot(t *testing.T, what string, got float32, a []float64, b []float32) {
	t.Helper()
	var ref, abs float64
	for i := range b {
		ref += a[i] * float64(b[i])
		abs += math.Abs(a[i] * float64(b[i]))
	}
	// +1 rounding per product for products of float32s (the FMA rounds less).
	tol := (dotChain(len(b)) + 1) * eps32 * abs
	if math.Abs(float64(got)-ref) > tol {
		t.Errorf("%s n=%d: got %v, want %v (tol %g)", what, len(b), got, ref, tol)
	}
}

func TestFloatDots(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	eachISA(t, func(t *testing.T, isa ISA) {
		for _, n := range testLengths {
			a, b := randVec(r, n), randVec(r, n+3) // b longer than a: only len(a) counts
			a64 := make([]float64, n)
			for i, v := range a {
				a64[i] = float64(v)
			}
			checkDot(t, "Dot", Dot(a, b), a64, b[:n])
			// F32 bytes at every alignment.
			buf := make([]byte, 4*n+3)
			for off := 0; off < 4; off++ {
				row := buf[off : off+4*n]
				for i, v := range a {
					binary.LittleEndian.PutUint32(row[4*i:], math.Float32bits(v))
				}
				checkDot(t, "DotF32Bytes", DotF32Bytes(row, b[:n]), a64, b[:n])
			}
			// F16 rows: the values are the halves' exact float32 values.
			h := make([]byte, 2*n+1)[1:] // odd address
			for i := range n {
				q := F32ToF16(a[i] * 100)
				binary.LittleEndian.PutUint16(h[2*i:], q)
				a64[i] = float64(F16ToF32(q))
			}
			checkDot(t, "DotF16", DotF16(h, b[:n]), a64, b[:n])
		}
	})
}

// With small integers every product and partial sum is exact in float32, so all paths
// (any summation order, with or without FMA) must agree exactly.
func TestFloatDotsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range testLengths {
		a, b := make([]float32, n), make([]float32, n)
		h := make([]byte, 2*n)
		row := make([]byte, 4*n)
		for i := range a {
			a[i], b[i] = float32(r.IntN(33)-16), float32(r.IntN(33)-16)
			binary.LittleEndian.PutUint16(h[2*i:], F32ToF16(a[i]))
			binary.LittleEndian.PutUint32(row[4*i:], math.Float32bits(a[i]))
		}
		want := dotGeneric(a, b)
		eachISA(t, func(t *testing.T, isa ISA) {
			if got := Dot(a, b); got != want {
				t.Errorf("Dot n=%d: %v != %v", n, got, want)
			}
			if got := DotF16(h, b); got != want {
				t.Errorf("DotF16 n=%d: %v != %v", n, got, want)
			}
			if got := DotF32Bytes(row, b); got != want {
				t.Errorf("DotF32Bytes n=%d: %v != %v", n, got, want)
			}
		})
	}
}

func classOf(f float32) int {
	switch {
	case f != f:
		return 0
	case math.IsInf(float64(f), 1):
		return 1
	case math.IsInf(float64(f), -1):
		return 2
	}
	return 3
}

// Infinities and NaN: which of NaN/+inf/-inf/finite a dot product gives does not
// depend on the order of the additions.
func TestFloatDotsSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	cases := [][2][]float32{
		{{1, 2, inf, 4, 5, 6, 7, 8, 9}, {1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{{1, 2, inf, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, {1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{{1, 2, inf, -inf, 5}, {1, 1, 1, 1, 1}},
		{{1, nan, 3}, {1, 1, 1}},
		{make([]float32, 40), append(make([]float32, 39), -inf)},
	}
	for _, c := range cases {
		want := classOf(dotGeneric(c[0], c[1]))
		h := make([]byte, 2*len(c[0]))
		for i, v := range c[0] {
			binary.LittleEndian.PutUint16(h[2*i:], F32ToF16(v))
		}
		wantH := classOf(dotF16Generic(h, c[1]))
		eachISA(t, func(t *testing.T, isa ISA) {
			if got := classOf(Dot(c[0], c[1])); got != want {
				t.Errorf("Dot(%v, %v) class %d, want %d", c[0], c[1], got, want)
			}
			if got := classOf(DotF16(h, c[1])); got != wantH {
				t.Errorf("DotF16(%v, %v) class %d, want %d", c[0], c[1], got, wantH)
			}
		})
	}
}

func TestFloatAxpyExact(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range testLengths {
		x, y0 := randVec(r, n), randVec(r, n)
		want := append([]float32(nil), y0...)
		axpyGeneric(want, 0.37, x)
		eachISA(t, func(t *testing.T, isa ISA) {
			y := append(make([]float32, 0, n+1), y0...)
			y = append(y, 42)[:n] // a guard element after y must stay
			Axpy(y, 0.37, x)
			for i := range y {
				if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
					t.Fatalf("Axpy n=%d [%d]: %v != %v", n, i, y[i], want[i])
				}
			}
			if y[:n+1][n] != 42 {
				t.Fatalf("Axpy n=%d wrote past y", n)
			}
		})
	}
}

func TestFloatRMSNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, n := range testLengths[1:] {
		x, w := randVec(r, n), randVec(r, n)
		want := make([]float32, n)
		rmsNormGeneric(want, x, w, 1e-5)
		eachISA(t, func(t *testing.T, isa ISA) {
			out := make([]float32, n+1)
			out[n] = 42
			RMSNorm(out[:n], x, w, 1e-5)
			for i := range n {
				if d := math.Abs(float64(out[i] - want[i])); d > rmsTol*math.Abs(float64(want[i])) {
					t.Fatalf("RMSNorm n=%d [%d]: %v, want %v", n, i, out[i], want[i])
				}
			}
			if out[n] != 42 {
				t.Fatalf("RMSNorm n=%d wrote past out", n)
			}
			// in place
			y := append([]float32(nil), x...)
			RMSNorm(y, y, w, 1e-5)
			for i := range n {
				if y[i] != out[i] {
					t.Fatalf("RMSNorm in place differs at %d", i)
				}
			}
		})
	}
}

func siluClose(got, want, up float32) bool {
	if want != want {
		return got != got
	}
	if math.IsInf(float64(want), 0) {
		return got == want
	}
	return math.Abs(float64(got-want)) <= siluRelTol*math.Abs(float64(want))+siluAbsTol*math.Abs(float64(up))
}

func TestFloatSiLUMul(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 20, -20, 80, -80, 87, -87, 88, -88, 89, -89, 95, -95,
		104, -104, 110, -110, 1e4, -1e4, 3e38, -3e38, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for _, n := range append(testLengths, len(special)) {
		g := randVec(r, n)
		for i := range g {
			g[i] *= 8
		}
		if n == len(special) {
			copy(g, special)
		}
		u := randVec(r, n)
		want := append([]float32(nil), g...)
		siluMulGeneric(want, u)
		eachISA(t, func(t *testing.T, isa ISA) {
			got := append(make([]float32, 0, n+1), g...)
			got = append(got, 42)[:n]
			SiLUMul(got, u)
			for i := range got {
				if !siluClose(got[i], want[i], u[i]) {
					t.Errorf("SiLUMul g=%v u=%v: %v, want %v", g[i], u[i], got[i], want[i])
				}
			}
			if got[:n+1][n] != 42 {
				t.Fatalf("SiLUMul n=%d wrote past gate", n)
			}
		})
	}
}

// softmaxRef is softmax in float64 (NaN rows as documented).
func softmaxRef(x []float32) []float64 {
	out := make([]float64, len(x))
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func smClose(got float32, want float64) bool {
	if math.IsNaN(want) {
		return got != got
	}
	return math.Abs(float64(got)-want) <= smRelTol*math.Abs(want)+smAbsTol
}

var softmaxFuncs = []struct {
	name string
	f    func([]float32)
}{{"Softmax", Softmax}, {"SoftmaxThreePass", SoftmaxThreePass}, {"SoftmaxTwoPass", SoftmaxTwoPass}}

func checkSoftmax(t *testing.T, x []float32) {
	t.Helper()
	want := softmaxRef(x)
	for _, sf := range softmaxFuncs {
		y := append(make([]float32, 0, len(x)+1), x...)
		y = append(y, 42)[:len(x)]
		sf.f(y)
		bad := 0
		for i := range y {
			if !smClose(y[i], want[i]) {
				if bad < 5 {
					t.Errorf("%s(n=%d)[%d] x=%v: %v, want %v", sf.name, len(x), i, x[i], y[i], want[i])
				}
				bad++
			}
		}
		if y[:len(x)+1][len(x)] != 42 {
			t.Fatalf("%s(n=%d) wrote past x", sf.name, len(x))
		}
	}
}

func TestFloatSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ninf, inf, nan := float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN())
	eachISA(t, func(t *testing.T, isa ISA) {
		for _, n := range append(testLengths[1:], 70000, 200003) {
			x := randVec(r, n)
			for i := range x {
				x[i] *= 20
			}
			checkSoftmax(t, x)
			// a third masked with -inf
			for i := 0; i < n; i += 3 {
				x[i] = ninf
			}
			checkSoftmax(t, x)
		}
		for _, x := range [][]float32{
			{1000, 999, -1000, 0},
			{1000, 1001, 1002, 998, 997, 1003, 1000, 999, 1001},
			{-5000, -5001, -5002},
			{-99990, -99991, ninf},
			{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5},
			{3},
			{ninf},
			{ninf, ninf, ninf},
			{ninf, 0, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, 1},
			{1, 2, nan, 4},
			{nan, ninf, ninf},
			{1, inf, 3},
			{1, 2e5, 3},
			{-2e5, -2e5 - 1},
			{1e38, 0},
			{80, -80, 0},
			{0, -87, -88, -100, -103, -104, -105, -150},
		} {
			checkSoftmax(t, x)
		}
	})
}

// TestSoftmaxTwins compares each path's algorithms with their own generic twins.
func TestSoftmaxTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, n := range []int{1, 7, 17, 33, 1000, 65537} {
		x := randVec(r, n)
		for i := range x {
			x[i] *= 30
		}
		w3 := append([]float32(nil), x...)
		softmaxThreePassGeneric(w3)
		w2 := append([]float32(nil), x...)
		softmaxTwoPassGeneric(w2)
		eachISA(t, func(t *testing.T, isa ISA) {
			y3 := append([]float32(nil), x...)
			SoftmaxThreePass(y3)
			y2 := append([]float32(nil), x...)
			SoftmaxTwoPass(y2)
			for i := range x {
				if !smClose(y3[i], float64(w3[i])) || !smClose(y2[i], float64(w2[i])) {
					t.Fatalf("n=%d [%d]: three-pass %v (twin %v), two-pass %v (twin %v)", n, i, y3[i], w3[i], y2[i], w2[i])
				}
			}
		})
	}
}

// The exp recipe itself: within 2 ulp-ish (relative 3e-7) of e^x over the normal range.
func TestExpParts(t *testing.T) {
	var worst float64
	for x := -87.0; x <= 88; x += 0.0137 {
		n, p := expParts(float32(x))
		got := float64(p) * math.Exp2(float64(n))
		want := math.Exp(float64(float32(x)))
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Fatalf("exp polynomial: worst relative error %g", worst)
	}
	t.Logf("exp polynomial: worst relative error %.3g", worst)
}

func TestFloatNoAllocs(t *testing.T) {
	x := make([]float32, 1000)
	w := make([]float32, 1000)
	row := make([]byte, 2000)
	eachISA(t, func(t *testing.T, isa ISA) {
		n := testing.AllocsPerRun(5, func() {
			Dot(x, w)
			DotF16(row, x)
			DotF32Bytes(row[:400], x[:100])
			Axpy(x, 0.5, w)
			RMSNorm(x, x, w, 1e-5)
			SiLUMul(x, w)
			Softmax(x)
			SoftmaxTwoPass(x)
			SoftmaxThreePass(x)
		})
		if n != 0 {
			t.Fatalf("float kernels allocate: %v", n)
		}
	})
}
