package quant

import (
	"math"

	"github.com/mole-llm/mole/kernels"
)

// RTN4BlockBytes is the size of one MOLE_RTN4 block of GroupSize weights: f16 scale d,
// f16 offset m, GroupSize/2 bytes of codes.
const RTN4BlockBytes = 4 + GroupSize/2

// QuantizeRTN4 is the yardstick DGQ must beat: per group of GroupSize weights of a row,
// asymmetric round to nearest with no search and no smoothing, d = (max-min)/15, m = min,
// q = round((w-m)/d) in 0..15, w ≈ d*q + m (d and m rounded to f16 first, so that the
// codes are the nearest for the values the engine will use). Rows are padded with zeros
// to a whole number of groups. It returns the MOLE_RTN4 bytes, [rows][PadCols/128] blocks.
func QuantizeRTN4(w []float32, rows, cols int) []byte {
	ng := (cols + GroupSize - 1) / GroupSize
	out := make([]byte, rows*ng*RTN4BlockBytes)
	var grp [GroupSize]float32
	var codes [GroupSize]uint8
	for r := 0; r < rows; r++ {
		for g := 0; g < ng; g++ {
			clear(grp[:])
			copy(grp[:], w[r*cols+g*GroupSize:r*cols+min(cols, (g+1)*GroupSize)])
			lo, hi := grp[0], grp[0]
			for _, v := range grp {
				lo, hi = min(lo, v), max(hi, v)
			}
			dh, mh := kernels.F32ToF16((hi-lo)/15), kernels.F32ToF16(lo)
			d, m := kernels.F16ToF32(dh), kernels.F16ToF32(mh)
			for k, v := range grp {
				c := 0.0
				if d > 0 {
					c = math.Round(float64((v - m) / d))
				}
				codes[k] = uint8(max(0, min(15, c)))
			}
			b := out[(r*ng+g)*RTN4BlockBytes:]
			b[0], b[1], b[2], b[3] = byte(dh), byte(dh>>8), byte(mh), byte(mh>>8)
			PackCodes(b[4:RTN4BlockBytes], codes[:])
		}
	}
	return out
}

// DequantRTN4 decodes MOLE_RTN4 blocks into dst (len(dst) weights, at most the blocks').
func DequantRTN4(dst []float32, src []byte) {
	var codes [GroupSize]uint8
	for g := 0; g*GroupSize < len(dst); g++ {
		b := src[g*RTN4BlockBytes : (g+1)*RTN4BlockBytes]
		d := kernels.F16ToF32(uint16(b[0]) | uint16(b[1])<<8)
		m := kernels.F16ToF32(uint16(b[2]) | uint16(b[3])<<8)
		UnpackCodes(codes[:], b[4:])
		out := dst[g*GroupSize : min(len(dst), (g+1)*GroupSize)]
		for k := range out {
			out[k] = d*float32(codes[k]) + m
		}
	}
}
