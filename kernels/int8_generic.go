package kernels

import "math"

// Pure-Go twins of the int8 kernels (int8.go). They are always compiled: the
// generic path runs them, and the tests use them as the reference for every
// assembly path. Integer sums wrap like the int32 accumulators of the assembly
// (the true sums fit int32 for cols <= 131072), and the float epilogue is the
// exported one, so every path produces the same bits.

// a8w4Groups is the number of 128-code groups (tables per row) for cols codes;
// a trailing partial group (cols%128 = 32, 64 or 96) has its own table.
func a8w4Groups(cols int) int { return (cols + 127) / 128 }

func dotI8Generic(w, x []int8) int32 {
	w = w[:len(x)]
	var s0, s1, s2, s3 int32
	for k := 0; k+3 < len(x); k += 4 {
		s0 += int32(w[k]) * int32(x[k])
		s1 += int32(w[k+1]) * int32(x[k+1])
		s2 += int32(w[k+2]) * int32(x[k+2])
		s3 += int32(w[k+3]) * int32(x[k+3])
	}
	return s0 + s1 + s2 + s3
}

// dotA8W4Generic is sum_k table[g(k)][code(k)] * x[k] for one row: codes is the row's
// cols/2 bytes, tables its a8w4Groups(cols)*16 table bytes.
func dotA8W4Generic(codes []byte, tables []int8, x []int8) int32 {
	var s int32
	for b := 0; b < len(x)/32; b++ {
		t := tables[(b/4)*16 : (b/4)*16+16]
		c := codes[b*16 : b*16+16]
		xb := x[b*32 : b*32+32]
		for j := 0; j < 16; j++ {
			s += int32(t[c[j]&15])*int32(xb[j]) + int32(t[c[j]>>4])*int32(xb[j+16])
		}
	}
	return s
}

func gemvI8Generic(out []float32, w []int8, wScale []float32, rowSum []int32, x []int8, xScale float32) {
	cols := len(x)
	for r := range out {
		out[r] = wScale[r] * xScale * float32(dotI8Generic(w[r*cols:(r+1)*cols], x))
	}
}

func gemmI8Generic(out []float32, rows int, w []int8, wScale []float32, rowSum []int32, x []int8, xScale []float32) {
	cols := len(x) / len(xScale)
	for t, xs := range xScale {
		gemvI8Generic(out[t*rows:(t+1)*rows], w, wScale, rowSum, x[t*cols:(t+1)*cols], xs)
	}
}

func gemvA8W4Generic(out []float32, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	cols := len(x)
	cb, tb := cols/2, a8w4Groups(cols)*16
	for r := range out {
		out[r] = s1[r] * xScale * float32(dotA8W4Generic(codes[r*cb:(r+1)*cb], tables[r*tb:(r+1)*tb], x))
	}
}

func gemmA8W4Generic(out []float32, rows int, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	cols := len(x) / len(xScale)
	for t, xs := range xScale {
		gemvA8W4Generic(out[t*rows:(t+1)*rows], codes, tables, s1, rowSum, x[t*cols:(t+1)*cols], xs)
	}
}

// a8w4Entry is table entry q of the group with stored pair (z, s2) (see A8W4Tables).
func a8w4Entry(z, s2 byte, q int) int32 {
	return int32(max(-127, min(127, int(int8(s2))*(q-int(int8(z))))))
}

// dotA8W4GGeneric is dotA8W4Generic with each group's table entries computed from its
// stored (z, S2) pair: groups is the row's a8w4Groups(cols) pairs.
func dotA8W4GGeneric(codes []byte, groups []byte, x []int8) int32 {
	var s int32
	for b := 0; b < len(x)/32; b++ {
		z, s2 := groups[(b/4)*2], groups[(b/4)*2+1]
		c := codes[b*16 : b*16+16]
		xb := x[b*32 : b*32+32]
		for j := 0; j < 16; j++ {
			s += a8w4Entry(z, s2, int(c[j]&15))*int32(xb[j]) + a8w4Entry(z, s2, int(c[j]>>4))*int32(xb[j+16])
		}
	}
	return s
}

func gemvA8W4GGeneric(out []float32, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	cols := len(x)
	cb, gb := cols/2, a8w4Groups(cols)*2
	for r := range out {
		out[r] = s1[r] * xScale * float32(dotA8W4GGeneric(codes[r*cb:(r+1)*cb], groups[r*gb:(r+1)*gb], x))
	}
}

func gemmA8W4GGeneric(out []float32, rows int, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	cols := len(x) / len(xScale)
	for t, xs := range xScale {
		gemvA8W4GGeneric(out[t*rows:(t+1)*rows], codes, groups, s1, rowSum, x[t*cols:(t+1)*cols], xs)
	}
}

// rowSumsA8W4GGeneric: per group, the sum of its codes' table entries; a group whose
// codes all lie where the table is not clamped (the quantizer's guarantee) sums as
// S2*(sum of codes - n*z) from the code sum alone.
func rowSumsA8W4GGeneric(rowSum []int32, codes []byte, groups []byte, cols int) {
	cb, ng := cols/2, a8w4Groups(cols)
	for r := range rowSum {
		c, g := codes[r*cb:(r+1)*cb], groups[r*2*ng:(r+1)*2*ng]
		var s int32
		for gi := 0; gi < ng; gi++ {
			gc := c[gi*64 : min(len(c), gi*64+64)]
			z, s2 := g[2*gi], g[2*gi+1]
			var qs, lo, hi int
			lo = 15
			for _, b := range gc {
				a, h := int(b&15), int(b>>4)
				qs += a + h
				lo, hi = min(lo, a, h), max(hi, a, h)
			}
			if e0, e1 := a8w4Entry(z, s2, lo), a8w4Entry(z, s2, hi); int(e0) == int(int8(s2))*(lo-int(int8(z))) && int(e1) == int(int8(s2))*(hi-int(int8(z))) {
				// no clamped entry between the smallest and largest code (the entries are
				// affine in q, so the extremes bound them)
				s += int32(int(int8(s2)) * (qs - 2*len(gc)*int(int8(z))))
				continue
			}
			for _, b := range gc {
				s += a8w4Entry(z, s2, int(b&15)) + a8w4Entry(z, s2, int(b>>4))
			}
		}
		rowSum[r] = s
	}
}

// quantizeI8Generic: scale = absmax/127, dst[i] = round-half-away-from-zero(x[i]*127/absmax),
// which lies in [-127, 127]. An all-zero (or empty) x gives scale 0 and zeros. NaNs are
// treated as 0 and ±Inf make the scale +Inf (all outputs 0 except the infinities' signs).
func quantizeI8Generic(dst []int8, x []float32) float32 {
	var amax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax = a
		}
	}
	if amax == 0 {
		clear(dst[:len(x)])
		return 0
	}
	quantizeI8Values(dst, x, 127/amax)
	return amax / 127
}

// quantizeI8Values writes dst[i] = round-half-away-from-zero(x[i]*inv) clamped to
// [-127, 127], 0 for NaN (the second pass of quantizeI8Generic).
func quantizeI8Values(dst []int8, x []float32, inv float32) {
	for i, v := range x {
		q := float32(math.Round(float64(v * inv)))
		if q > 127 {
			q = 127
		} else if q < -127 {
			q = -127
		} else if q != q {
			q = 0
		}
		dst[i] = int8(q)
	}
}
