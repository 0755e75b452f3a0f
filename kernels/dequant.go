package kernels

import (
	"encoding/binary"
	"math"
)

// The Dequant* functions expand len(dst) elements of a row into float32. They are the
// exact twins of the Dot* functions (same element values) and serve embedding lookups,
// small vectors such as norm weights, and format conversion.

// DequantF32Bytes decodes little-endian float32 bytes.
func DequantF32Bytes(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// DequantF16 decodes binary16 bytes.
func DequantF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = f16Table[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

// DequantBF16 decodes bfloat16 bytes.
func DequantBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// DequantQ8_0 decodes Q8_0 blocks; len(dst) must be a multiple of 32.
func DequantQ8_0(dst []float32, src []byte) {
	nb := len(dst) / QK
	src = src[:nb*Q8_0Bytes]
	for b := 0; b < nb; b++ {
		blk := src[b*Q8_0Bytes:]
		d := f16Table[binary.LittleEndian.Uint16(blk)]
		for j := 0; j < QK; j++ {
			dst[b*QK+j] = float32(int8(blk[2+j])) * d
		}
	}
}

// DequantQ4_0 decodes Q4_0 blocks; len(dst) must be a multiple of 32.
func DequantQ4_0(dst []float32, src []byte) {
	nb := len(dst) / QK
	src = src[:nb*Q4_0Bytes]
	for b := 0; b < nb; b++ {
		blk := src[b*Q4_0Bytes:]
		d := f16Table[binary.LittleEndian.Uint16(blk)]
		for j := 0; j < QK/2; j++ {
			q := blk[2+j]
			dst[b*QK+j] = float32(int32(q&0x0f)-8) * d
			dst[b*QK+j+QK/2] = float32(int32(q>>4)-8) * d
		}
	}
}

// The Quantize* functions append the encoding of src (len a multiple of 32 for the
// block formats) to dst and return it. They follow the rounding of llama.cpp's
// reference quantisers so that files mole writes match files llama.cpp writes.

// QuantizeF32 appends little-endian float32 bytes.
func QuantizeF32(dst []byte, src []float32) []byte {
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

// QuantizeF16 appends binary16 bytes (round to nearest even).
func QuantizeF16(dst []byte, src []float32) []byte {
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(v))
	}
	return dst
}

// QuantizeBF16 appends bfloat16 bytes (round to nearest even).
func QuantizeBF16(dst []byte, src []float32) []byte {
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint16(dst, F32ToBF16(v))
	}
	return dst
}

// QuantizeQ8_0 appends Q8_0 blocks: d = max|x|/127, q = round(x/d).
func QuantizeQ8_0(dst []byte, src []float32) []byte {
	for b := 0; b+QK <= len(src); b += QK {
		xs := src[b : b+QK]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
		for _, v := range xs {
			dst = append(dst, byte(int8(math.Round(float64(v*id)))))
		}
	}
	return dst
}

// QuantizeQ4_0 appends Q4_0 blocks: the element of largest magnitude m (with its sign)
// maps to nibble 0, so d = m/-8 and q = clamp(trunc(x/d + 8.5), 0, 15).
func QuantizeQ4_0(dst []byte, src []float32) []byte {
	for b := 0; b+QK <= len(src); b += QK {
		xs := src[b : b+QK]
		var amax, m float32
		for _, v := range xs {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, m = a, v
			}
		}
		d := m / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
		for j := 0; j < QK/2; j++ {
			lo := min(15, int8(xs[j]*id+8.5))
			hi := min(15, int8(xs[j+QK/2]*id+8.5))
			dst = append(dst, byte(lo)|byte(hi)<<4)
		}
	}
	return dst
}
