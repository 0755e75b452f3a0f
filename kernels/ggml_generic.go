package kernels

import (
	"encoding/binary"
	"math"
)

// Pure-Go twins of the GGML kernels. The hooks (gemvQ8_0, ...) receive validated,
// exactly sized slices: len(w) = rows*cols/32*blockBytes, len(xq) = ntok*cols/32*34.

const roundMagic = 1.5 * (1 << 23)

func quantizeQ8_0ActGeneric(dst []byte, x []float32) {
	for b := 0; b+QK <= len(x); b += QK {
		xs := x[b : b+QK]
		blk := dst[b/QK*Q8_0Bytes : b/QK*Q8_0Bytes+Q8_0Bytes]
		var amax float32
		for _, v := range xs {
			amax = max(amax, math.Float32frombits(math.Float32bits(v)&^(1<<31)))
		}
		binary.LittleEndian.PutUint16(blk, F32ToF16(amax/127))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		q := blk[2 : 2+QK]
		for j, v := range xs {
			// |v*id| <= 127 (plus rounding) for finite x, so adding and subtracting
			// 1.5*2^23 rounds to the nearest integer, ties to even, in float32. The
			// explicit float32(v*id) keeps arm64 from fusing the product into an FMA,
			// which would round once instead of twice and differ from llama.cpp.
			f := float32(float32(float32(v*id)+roundMagic) - roundMagic)
			switch {
			case f >= -127 && f <= 127:
			case f < -127:
				f = -127
			case f > 127:
				f = 127
			default: // NaN: only for non-finite x
				f = 0
			}
			q[j] = byte(int8(f))
		}
	}
}

// fma32 returns a*b+c rounded once to float32, like VFMADD231PS. The float64 product is
// exact; the float64 sum is corrected when rounding it to float32 would round twice.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	cc := float64(c)
	s := p + cc
	// TwoSum: s + t == p + c exactly.
	bb := s - p
	t := (p - (s - bb)) + (cc - bb)
	if t != 0 && !math.IsInf(s, 0) && !math.IsNaN(t) {
		bits := math.Float64bits(s)
		// s lies exactly halfway between two float32 values: the exact sum is not,
		// so move s one float64 ulp towards it before the final rounding.
		if bits&(1<<29-1) == 1<<28 {
			if (t > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

func gemvQ8_0Generic(out []float32, w []byte, cols int, xq []byte) {
	nb := cols / QK
	rb := nb * Q8_0Bytes
	for r := range out {
		row := w[r*rb : (r+1)*rb]
		var acc float32
		for b := 0; b < nb; b++ {
			wb := row[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
			xb := xq[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
			var s int32
			for j := 2; j < Q8_0Bytes; j++ {
				s += int32(int8(wb[j])) * int32(int8(xb[j]))
			}
			d := float32(f16Table[binary.LittleEndian.Uint16(wb)] * f16Table[binary.LittleEndian.Uint16(xb)])
			acc = fma32(float32(s), d, acc)
		}
		out[r] = acc
	}
}

func gemvQ4_0Generic(out []float32, w []byte, cols int, xq []byte) {
	nb := cols / QK
	rb := nb * Q4_0Bytes
	for r := range out {
		row := w[r*rb : (r+1)*rb]
		var acc float32
		for b := 0; b < nb; b++ {
			wb := row[b*Q4_0Bytes : (b+1)*Q4_0Bytes]
			xb := xq[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
			var s int32
			for j := 0; j < QK/2; j++ {
				s += (int32(wb[2+j]&0x0f) - 8) * int32(int8(xb[2+j]))
				s += (int32(wb[2+j]>>4) - 8) * int32(int8(xb[2+j+QK/2]))
			}
			d := float32(f16Table[binary.LittleEndian.Uint16(wb)] * f16Table[binary.LittleEndian.Uint16(xb)])
			acc = fma32(float32(s), d, acc)
		}
		out[r] = acc
	}
}

func gemmQ8_0Generic(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	xb := Q8ActBytes(cols)
	for t := 0; t < ntok; t++ {
		gemvQ8_0Generic(out[t*rows:(t+1)*rows], w, cols, xq[t*xb:(t+1)*xb])
	}
}

func gemmQ4_0Generic(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	xb := Q8ActBytes(cols)
	for t := 0; t < ntok; t++ {
		gemvQ4_0Generic(out[t*rows:(t+1)*rows], w, cols, xq[t*xb:(t+1)*xb])
	}
}
