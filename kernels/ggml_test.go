package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ggmlISAs runs f for every ISA this CPU supports (the generic twin included), restoring
// the active path afterwards.
func ggmlISAs(t *testing.T, f func(t *testing.T, i ISA)) {
	t.Helper()
	for i := Generic; i < numISA; i++ {
		t.Run(i.String(), func(t *testing.T) {
			if !Supported(i) {
				t.Skipf("%s not supported on this CPU/build", i)
			}
			prev, err := SetISA(i)
			if err != nil {
				t.Fatal(err)
			}
			defer SetISA(prev)
			f(t, i)
		})
	}
}

// randQ8Weights returns rows rows of Q8_0 blocks with random scales (positive and
// negative f16, including subnormal and zero) and int8 values over the whole range.
func randQ8Weights(r *rand.Rand, rows, cols int, extreme bool) []byte {
	nb := cols / QK
	w := make([]byte, rows*nb*Q8_0Bytes)
	for b := 0; b < rows*nb; b++ {
		blk := w[b*Q8_0Bytes:]
		binary.LittleEndian.PutUint16(blk, randScale(r))
		for j := 0; j < QK; j++ {
			v := byte(r.IntN(256))
			if extreme {
				v = []byte{0x80, 0x7f, 0x81, 0}[r.IntN(4)]
			}
			blk[2+j] = v
		}
	}
	return w
}

func randQ4Weights(r *rand.Rand, rows, cols int, extreme bool) []byte {
	nb := cols / QK
	w := make([]byte, rows*nb*Q4_0Bytes)
	for b := 0; b < rows*nb; b++ {
		blk := w[b*Q4_0Bytes:]
		binary.LittleEndian.PutUint16(blk, randScale(r))
		for j := 0; j < QK/2; j++ {
			v := byte(r.IntN(256))
			if extreme {
				v = []byte{0x00, 0xff, 0x0f, 0xf0}[r.IntN(4)]
			}
			blk[2+j] = v
		}
	}
	return w
}

func randScale(r *rand.Rand) uint16 {
	switch r.IntN(16) {
	case 0:
		return 0
	case 1:
		return uint16(r.IntN(0x400)) | uint16(r.IntN(2))<<15 // subnormal
	}
	return F32ToF16(float32(r.NormFloat64() * 0.01))
}

// randAct returns n floats quantised to Q8_0 activation blocks; extreme makes blocks
// whose values sit on ±127 after rounding.
func randAct(r *rand.Rand, n int, extreme bool) []byte {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * math.Exp(r.NormFloat64()))
		if extreme {
			x[i] = []float32{-1, 1, 0, -0.5}[r.IntN(4)]
		}
	}
	xq := make([]byte, Q8ActBytes(n))
	QuantizeQ8_0Act(xq, x)
	return xq
}

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i
		}
	}
	return -1
}

var ggmlShapes = []struct{ rows, cols int }{
	{1, 32}, {3, 32}, {4, 64}, {17, 64}, {5, 96}, {8, 4096 + 32}, {17, 4096 + 32}, {1, 4096 + 32}, {64, 256}, {3, 1024},
}

// TestGemvGGMLvsGeneric compares every ISA path with the pure-Go twin bit for bit.
func TestGemvGGMLvsGeneric(t *testing.T) {
	ggmlISAs(t, func(t *testing.T, isa ISA) {
		r := rand.New(rand.NewPCG(1, uint64(isa)))
		for _, sh := range ggmlShapes {
			for _, extreme := range []bool{false, true} {
				xq := randAct(r, sh.cols, extreme)
				for _, q4 := range []bool{false, true} {
					var w []byte
					if q4 {
						w = randQ4Weights(r, sh.rows, sh.cols, extreme)
					} else {
						w = randQ8Weights(r, sh.rows, sh.cols, extreme)
					}
					got := make([]float32, sh.rows)
					want := make([]float32, sh.rows)
					if q4 {
						GemvQ4_0(got, w, sh.cols, xq)
						gemvQ4_0Generic(want, w, sh.cols, xq)
					} else {
						GemvQ8_0(got, w, sh.cols, xq)
						gemvQ8_0Generic(want, w, sh.cols, xq)
					}
					if i := sameBits(got, want); i >= 0 {
						t.Errorf("q4=%v %dx%d extreme=%v: row %d got %v want %v", q4, sh.rows, sh.cols, extreme, i, got[i], want[i])
					}
				}
			}
		}
	})
}

// TestGemmGGMLvsGemv checks that GEMM over ntok tokens equals GEMV per token, per ISA.
func TestGemmGGMLvsGemv(t *testing.T) {
	ggmlISAs(t, func(t *testing.T, isa ISA) {
		r := rand.New(rand.NewPCG(2, uint64(isa)))
		for _, sh := range []struct{ rows, cols, ntok int }{{1, 32, 1}, {3, 64, 5}, {17, 96, 3}, {8, 4096 + 32, 2}, {20, 256, 7}} {
			nb := sh.cols / QK
			xq := make([]byte, 0, sh.ntok*nb*Q8_0Bytes)
			for t := 0; t < sh.ntok; t++ {
				xq = append(xq, randAct(r, sh.cols, t%2 == 1)...)
			}
			for _, q4 := range []bool{false, true} {
				var w []byte
				if q4 {
					w = randQ4Weights(r, sh.rows, sh.cols, false)
				} else {
					w = randQ8Weights(r, sh.rows, sh.cols, false)
				}
				got := make([]float32, sh.rows*sh.ntok)
				if q4 {
					GemmQ4_0(got, sh.rows, w, sh.cols, xq, sh.ntok)
				} else {
					GemmQ8_0(got, sh.rows, w, sh.cols, xq, sh.ntok)
				}
				for tk := 0; tk < sh.ntok; tk++ {
					want := make([]float32, sh.rows)
					x := xq[tk*nb*Q8_0Bytes : (tk+1)*nb*Q8_0Bytes]
					if q4 {
						gemvQ4_0Generic(want, w, sh.cols, x)
					} else {
						gemvQ8_0Generic(want, w, sh.cols, x)
					}
					if i := sameBits(got[tk*sh.rows:(tk+1)*sh.rows], want); i >= 0 {
						t.Errorf("q4=%v %+v token %d row %d: got %v want %v", q4, sh, tk, i, got[tk*sh.rows+i], want[i])
					}
				}
			}
		}
	})
}

// TestGGMLGenericValues checks the twins against a float64 evaluation of the same
// blocks (dequantised weights times dequantised activations).
func TestGGMLGenericValues(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const rows, cols = 7, 256
	x := randVec(r, cols)
	xq := make([]byte, Q8ActBytes(cols))
	QuantizeQ8_0Act(xq, x)
	xd := make([]float32, cols)
	DequantQ8_0(xd, xq)
	for i := range x { // the activation rounding error is at most d/2 per element
		d := F16ToF32(binary.LittleEndian.Uint16(xq[i/QK*Q8_0Bytes:]))
		if e := math.Abs(float64(xd[i] - x[i])); e > float64(d)*0.5001+1e-3*math.Abs(float64(x[i])) {
			t.Fatalf("x[%d]=%v dequantised %v (d=%v)", i, x[i], xd[i], d)
		}
	}
	for _, q4 := range []bool{false, true} {
		var src []byte
		wrow := make([]float32, cols)
		for i := 0; i < rows; i++ {
			if q4 {
				src = QuantizeQ4_0(src, randVec(r, cols))
			} else {
				src = QuantizeQ8_0(src, randVec(r, cols))
			}
		}
		out := make([]float32, rows)
		if q4 {
			gemvQ4_0Generic(out, src, cols, xq)
		} else {
			gemvQ8_0Generic(out, src, cols, xq)
		}
		for i := 0; i < rows; i++ {
			var want float64
			if q4 {
				DequantQ4_0(wrow, src[i*cols/QK*Q4_0Bytes:])
			} else {
				DequantQ8_0(wrow, src[i*cols/QK*Q8_0Bytes:])
			}
			for j := range wrow {
				want += float64(wrow[j]) * float64(xd[j])
			}
			approx(t, fmt.Sprintf("q4=%v row %d", q4, i), out[i], want, 1e-5)
		}
	}
}

// TestQuantizeQ8_0Act checks the llama.cpp x86 rounding: d = f16(amax/127) and
// q = round-half-even(x*127/amax), with q = ±127 at the extremes.
func TestQuantizeQ8_0Act(t *testing.T) {
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(i) - 31.5 // amax 32.5 in the second block, 31.5 in the first
	}
	x[5] = 0.5 * 31.5 / 127 * 3 // 1.5 units: rounds to even 2
	x[40] = 0
	dst := make([]byte, Q8ActBytes(64))
	QuantizeQ8_0Act(dst, x)
	for b := 0; b < 2; b++ {
		blk := dst[b*Q8_0Bytes:]
		var amax float32
		for _, v := range x[b*QK : (b+1)*QK] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if got, want := binary.LittleEndian.Uint16(blk), F32ToF16(amax/127); got != want {
			t.Errorf("block %d: d %#x want %#x", b, got, want)
		}
		for j := 0; j < QK; j++ {
			want := math.RoundToEven(float64(x[b*QK+j] * (127 / amax)))
			if got := int8(blk[2+j]); float64(got) != want {
				t.Errorf("x[%d]=%v: q %d want %v", b*QK+j, x[b*QK+j], got, want)
			}
		}
	}
	if q := int8(dst[2]); q != -127 {
		t.Errorf("x[0]=-31.5 (the block's amax): q %d, want -127", q)
	}
	zero := make([]float32, 32)
	QuantizeQ8_0Act(dst, zero)
	for _, v := range dst[:Q8_0Bytes] {
		if v != 0 {
			t.Fatalf("zero block: %v", dst[:Q8_0Bytes])
		}
	}
}

// TestFMA32 checks fma32 on a hand-made double-rounding trap and against float64 FMA.
func TestFMA32(t *testing.T) {
	// a*b = 1 + 2^-24 + 2^-48 exactly when a = b = 1+2^-24... use a case where the float64
	// sum lands on a float32 midpoint: p = 1 + 2^-24 (a midpoint), c = tiny positive.
	a := float32(1 + 1.0/(1<<23))
	b := float32(1 - 1.0/(1<<24))
	// a*b = 1 + 2^-23 - 2^-24 - 2^-47 = 1 + 2^-24 - 2^-47: below the midpoint 1+2^-24,
	// so the correct float32 is 1; float64 rounding of p+0 is exact here.
	if got := fma32(a, b, 0); got != 1 {
		t.Errorf("fma32 = %v, want 1", got)
	}
	// p = 1 + 2^-24 - 2^-47 (exact in float64), c = 2^-80: p+c rounds in float64 to p,
	// no midpoint. Now a case that does hit it: c = 2^-47 + 2^-100 makes the exact sum
	// 1 + 2^-24 + 2^-100 (above the midpoint: rounds up) while float64 gives the midpoint.
	c := float32(math.Ldexp(1, -47) + math.Ldexp(1, -70))
	got := fma32(a, b, c)
	want := float32(1 + 1.0/(1<<23))
	if got != want {
		t.Errorf("fma32 midpoint case = %v, want %v", got, want)
	}
	r := rand.New(rand.NewPCG(4, 4))
	for i := 0; i < 100000; i++ {
		a, b, c := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		if got, want := fma32(a, b, c), float32(math.FMA(float64(a), float64(b), float64(c))); got != want {
			// Only a midpoint case may differ from the double-rounded value.
			s := math.FMA(float64(a), float64(b), float64(c))
			if math.Float64bits(s)&(1<<29-1) != 1<<28 {
				t.Fatalf("fma32(%v,%v,%v) = %v, want %v", a, b, c, got, want)
			}
		}
	}
}

func FuzzGemvQ8_0(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(2))
	f.Add(uint64(2), uint8(17), uint8(129))
	f.Add(uint64(3), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, rows, blocks uint8) {
		fuzzGGML(t, seed, int(rows%40)+1, int(blocks%140)+1, false)
	})
}

func FuzzGemvQ4_0(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(2))
	f.Add(uint64(2), uint8(17), uint8(129))
	f.Add(uint64(3), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, rows, blocks uint8) {
		fuzzGGML(t, seed, int(rows%40)+1, int(blocks%140)+1, true)
	})
}

func fuzzGGML(t *testing.T, seed uint64, rows, nb int, q4 bool) {
	r := rand.New(rand.NewPCG(seed, 9))
	cols := nb * QK
	xq := randAct(r, cols, seed%3 == 0)
	var w []byte
	if q4 {
		w = randQ4Weights(r, rows, cols, seed%5 == 0)
	} else {
		w = randQ8Weights(r, rows, cols, seed%5 == 0)
	}
	want := make([]float32, rows)
	if q4 {
		gemvQ4_0Generic(want, w, cols, xq)
	} else {
		gemvQ8_0Generic(want, w, cols, xq)
	}
	for i := Generic; i < numISA; i++ {
		if !Supported(i) {
			continue
		}
		prev, _ := SetISA(i)
		got := make([]float32, rows)
		if q4 {
			GemvQ4_0(got, w, cols, xq)
		} else {
			GemvQ8_0(got, w, cols, xq)
		}
		SetISA(prev)
		if j := sameBits(got, want); j >= 0 {
			t.Fatalf("%s q4=%v %dx%d: row %d got %v want %v", i, q4, rows, cols, j, got[j], want[j])
		}
	}
}

func TestGGMLAllocs(t *testing.T) {
	ggmlISAs(t, func(t *testing.T, isa ISA) {
		r := rand.New(rand.NewPCG(5, 5))
		const rows, cols, ntok = 19, 256, 21
		x := randVec(r, cols)
		xq := make([]byte, ntok*Q8ActBytes(cols))
		w8 := randQ8Weights(r, rows, cols, false)
		w4 := randQ4Weights(r, rows, cols, false)
		out := make([]float32, rows*ntok)
		n := testing.AllocsPerRun(20, func() {
			QuantizeQ8_0Act(xq, x)
			GemvQ8_0(out[:rows], w8, cols, xq)
			GemvQ4_0(out[:rows], w4, cols, xq)
			GemmQ4_0(out, rows, w4, cols, xq, ntok)
			GemmQ8_0(out, rows, w8, cols, xq, ntok)
		})
		if n != 0 {
			t.Errorf("%v allocations per run", n)
		}
	})
}

// TestQuantizeQ8_0ActRandom compares the quantiser with a direct transcription of
// llama.cpp's x86 quantize_row_q8_0 (math.RoundToEven for _mm256_round_ps), including
// blocks of exact halves (ties).
func TestQuantizeQ8_0ActRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	x := make([]float32, 32*2000)
	for i := range x {
		switch r.IntN(3) {
		case 0:
			x[i] = float32(r.NormFloat64() * math.Exp(4*r.NormFloat64()))
		case 1:
			x[i] = float32(r.IntN(255)-127) + 0.5 // ties when amax/127 is exactly 1
		default:
			x[i] = float32(r.IntN(255) - 127)
		}
	}
	for b := 0; b < len(x)/32; b += 7 { // some blocks with amax exactly 127: ties stay ties
		x[b*32] = 127
		for j := 1; j < 32; j++ {
			x[b*32+j] = float32(math.Round(float64(x[b*32+j]*2))) / 2
			x[b*32+j] = min(max(x[b*32+j], -127), 127)
		}
	}
	dst := make([]byte, Q8ActBytes(len(x)))
	QuantizeQ8_0Act(dst, x)
	for b := 0; b < len(x)/32; b++ {
		xs := x[b*32 : (b+1)*32]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		id := float32(0)
		if amax != 0 {
			id = 127 / amax
		}
		blk := dst[b*Q8_0Bytes:]
		if got, want := binary.LittleEndian.Uint16(blk), F32ToF16(amax/127); got != want {
			t.Fatalf("block %d: d %#x want %#x", b, got, want)
		}
		for j, v := range xs {
			if got, want := int8(blk[2+j]), int8(math.RoundToEven(float64(v*id))); got != want {
				t.Fatalf("block %d x=%v: q %d want %d", b, v, got, want)
			}
		}
	}
}
