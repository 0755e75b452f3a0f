package kernels

import (
	"encoding/binary"
	"math"
)

// Pure-Go twins of the float32 kernels. They are what the Generic path (and every
// non-amd64 or purego build) runs, and the references the assembly is tested against.

func dotGeneric(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF32BytesGeneric(row []byte, x []float32) float32 {
	n := len(x)
	row = row[:4*n]
	if f, ok := f32View(row); ok {
		return dotGeneric(f, x)
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		r := row[4*i : 4*i+16]
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(r[0:])) * x[i]
		s1 += math.Float32frombits(binary.LittleEndian.Uint32(r[4:])) * x[i+1]
		s2 += math.Float32frombits(binary.LittleEndian.Uint32(r[8:])) * x[i+2]
		s3 += math.Float32frombits(binary.LittleEndian.Uint32(r[12:])) * x[i+3]
	}
	for ; i < n; i++ {
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:])) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16Generic(row []byte, x []float32) float32 {
	n := len(x)
	row = row[:2*n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		r := row[2*i : 2*i+8]
		s0 += f16Table[binary.LittleEndian.Uint16(r[0:])] * x[i]
		s1 += f16Table[binary.LittleEndian.Uint16(r[2:])] * x[i+1]
		s2 += f16Table[binary.LittleEndian.Uint16(r[4:])] * x[i+2]
		s3 += f16Table[binary.LittleEndian.Uint16(r[6:])] * x[i+3]
	}
	for ; i < n; i++ {
		s0 += f16Table[binary.LittleEndian.Uint16(row[2*i:])] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyGeneric(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

// sumSqGeneric is the float64 sum of squares RMSNorm normalises by.
func sumSqGeneric(x []float32) float64 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	return ss
}

func rmsScaleGeneric(out, x, w []float32, scale float32) {
	w = w[:len(x)]
	out = out[:len(x)]
	for i, v := range x {
		out[i] = v * scale * w[i]
	}
}

// rmsScaleFactor is 1/sqrt(mean(x^2)+eps) from the float64 sum of squares.
func rmsScaleFactor(ss float64, n int, eps float32) float32 {
	return float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
}

func rmsNormGeneric(out, x, w []float32, eps float32) {
	rmsScaleGeneric(out, x, w, rmsScaleFactor(sumSqGeneric(x), len(x), eps))
}

func siluMulGeneric(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		gate[i] = SiLU(g) * up[i]
	}
}

// softmaxThreePassGeneric: max, sum of exp(x-max) in float64, scale. A row whose maximum
// is -inf (all elements -inf), +inf or NaN becomes all NaN, as in PyTorch.
func softmaxThreePassGeneric(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// The exp recipe of the SIMD kernels (asm/float; XNNPACK's p5 constants):
// e^x = p * 2^n with n = round(x*log2e) and p = poly5(x - n*ln2) on [-ln2/2, ln2/2].
const (
	expLog2e = float32(1.44269504088896341)
	expC1    = float32(0x1.FFFFF6p-1)
	expC2    = float32(0x1.FFFDC6p-2)
	expC3    = float32(0x1.555A80p-3)
	expC4    = float32(0x1.573A1Ap-5)
	expC5    = float32(0x1.0F9F9Cp-7)

	// twoPassClamp bounds x in the two-pass softmax so that the range reduction stays
	// accurate and -inf becomes a finite value whose weight underflows to exactly 0.
	twoPassClamp = 1e5
	// twoPassLimit: a row whose largest exponent n reaches +-twoPassLimit (maximum
	// x beyond about +-99813: only clamped, infinite or absurd logits) or whose sum is
	// NaN is handed to the three-pass softmax, which defines those cases.
	twoPassLimit = 144000
)

// expParts returns (n, p) for x, x clamped to +-twoPassClamp (NaN stays NaN). n is
// computed as the SIMD three-pass and SiLU kernels do (float32 product, round half to
// even; the two-pass kernels round the fused product x*log2e + 1.5*2^23 instead, which
// can move n by one at a tie, with the same accuracy); the reduction x - n*ln2 is done
// in float64 (the kernels use two FMAs).
func expParts(x float32) (n, p float32) {
	if x < -twoPassClamp {
		x = -twoPassClamp
	} else if x > twoPassClamp {
		x = twoPassClamp
	}
	n = float32(math.RoundToEven(float64(x * expLog2e)))
	t := float32(float64(x) - float64(n)*math.Ln2)
	p = ((((expC5*t+expC4)*t+expC3)*t+expC2)*t+expC1)*t + 1
	return n, p
}

// mergeExp adds m*2^e to the running sum M*2^E (float64 mantissas, exponents kept apart).
func mergeExp(M, E, m, e float64) (float64, float64) {
	if e > E {
		M *= math.Exp2(E - e)
		E = e
	}
	return M + m*math.Exp2(e-E), E
}

// twoPassOK reports whether pass 1's result (M, E) can be used; otherwise the row goes
// to the three-pass softmax.
func twoPassOK(M, E float64) bool {
	return E > -twoPassLimit && E < twoPassLimit && M > 0 && !math.IsInf(M, 0)
}

// softmaxTwoPassGeneric is the two-pass algorithm (docs/algorithms.md §5) one element at
// a time: pass 1 accumulates sum e^x as (M, E), pass 2 writes p/M * 2^(n-E).
func softmaxTwoPassGeneric(x []float32) {
	if len(x) == 0 {
		return
	}
	M, E := 0.0, math.Inf(-1)
	for _, v := range x {
		n, p := expParts(v)
		M, E = mergeExp(M, E, float64(p), float64(n))
	}
	if !twoPassOK(M, E) {
		softmaxThreePassGeneric(x)
		return
	}
	inv := 1 / M
	for i, v := range x {
		n, p := expParts(v)
		x[i] = float32(float64(p) * inv * math.Exp2(float64(n)-E))
	}
}

// dotF16MultiGeneric and dotF32BytesMultiGeneric are the batched dot products one vector
// at a time (the generic kernels gain nothing from sharing the row decode, and looping
// keeps their results trivially equal to the single-vector twins).
func dotF16MultiGeneric(row []byte, xs [][]float32, out []float32) {
	for k, x := range xs {
		out[k] = dotF16Generic(row, x)
	}
}

func dotF32BytesMultiGeneric(row []byte, xs [][]float32, out []float32) {
	for k, x := range xs {
		out[k] = dotF32BytesGeneric(row, x)
	}
}
