package loader

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// F32Bytes encodes src as little-endian float32 bytes.
func F32Bytes(src []float32) []byte {
	out := make([]byte, 4*len(src))
	for i, f := range src {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
	}
	return out
}

// F32ToF16Bytes converts src to little-endian IEEE half precision, rounding to nearest
// even (values beyond the half range become infinities, as PyTorch's .half() does).
func F32ToF16Bytes(src []float32) []byte {
	out := make([]byte, 2*len(src))
	for i, f := range src {
		binary.LittleEndian.PutUint16(out[2*i:], float16.Fromfloat32(f).Bits())
	}
	return out
}

// F32ToBF16Bytes converts src to little-endian bfloat16, rounding to nearest even (as
// PyTorch does) rather than truncating; NaNs stay NaN.
func F32ToBF16Bytes(src []float32) []byte {
	out := make([]byte, 2*len(src))
	for i, f := range src {
		binary.LittleEndian.PutUint16(out[2*i:], f32ToBF16(f))
	}
	return out
}

func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f { // NaN: keep the sign, force a quiet NaN so truncation cannot make it Inf
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// Float32s decodes an F32, F16 or BF16 tensor into a new float32 slice (for tests and
// conversion tools; the engine's kernels read the views directly).
func (t *Tensor) Float32s() ([]float32, error) {
	n := t.Elems()
	want, err := t.DType.RowBytes(n)
	if err != nil {
		return nil, fmt.Errorf("loader: tensor %q: %v", t.Name, err)
	}
	if want != len(t.Data) {
		return nil, fmt.Errorf("loader: tensor %q: %d bytes, want %d", t.Name, len(t.Data), want)
	}
	out := make([]float32, n)
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = float16.Frombits(binary.LittleEndian.Uint16(t.Data[2*i:])).Float32()
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	default:
		return nil, fmt.Errorf("loader: tensor %q: cannot convert %s to float32 here", t.Name, t.DType)
	}
	return out, nil
}
