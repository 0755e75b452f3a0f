package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// littleEndian reports whether float32 bytes in files (always little-endian) can be
// read in place as []float32 on this machine.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Block sizes of llama.cpp's Q8_0 and Q4_0 formats: 32 elements per block, preceded by
// one binary16 scale d.
const (
	QK        = 32
	Q8_0Bytes = 2 + QK
	Q4_0Bytes = 2 + QK/2
)

// Dot returns sum a[i]*b[i] over len(a) elements (b must be at least as long). The
// generic path keeps four partial sums; the SIMD paths keep four vector accumulators
// (64 lanes on AVX-512, 32 on AVX2) with fused multiply-adds, so results differ from the
// generic path by summation order only.
func Dot(a, b []float32) float32 {
	return dotImpl(a, b[:len(a)])
}

// DotF32Bytes is Dot for a row stored as little-endian float32 bytes (4*len(x)), at any
// alignment.
func DotF32Bytes(row []byte, x []float32) float32 {
	return dotF32BytesImpl(row[:4*len(x)], x)
}

// f32View reads row as []float32 in place when the machine is little-endian and the row
// is 4-byte aligned (mapped files are: GGUF to 32 bytes, safetensors data to 8 in practice).
func f32View(row []byte) ([]float32, bool) {
	if littleEndian && len(row) >= 4 && uintptr(unsafe.Pointer(&row[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&row[0])), len(row)/4), true
	}
	return nil, false
}

// DotF16 is Dot for a row stored as little-endian binary16 bytes (2*len(x)); the SIMD
// paths convert with VCVTPH2PS (exact, like the generic table).
func DotF16(row []byte, x []float32) float32 {
	return dotF16Impl(row[:2*len(x)], x)
}

// DotBF16 is Dot for a row stored as little-endian bfloat16 bytes (2*len(x)).
func DotBF16(row []byte, x []float32) float32 {
	n := len(x)
	row = row[:2*n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		r := row[2*i : 2*i+8]
		s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(r[0:]))<<16) * x[i]
		s1 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(r[2:]))<<16) * x[i+1]
		s2 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(r[4:]))<<16) * x[i+2]
		s3 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(r[6:]))<<16) * x[i+3]
	}
	for ; i < n; i++ {
		s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(row[2*i:]))<<16) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// DotQ8_0 is Dot for a row of Q8_0 blocks: len(x)/32 blocks of (f16 d, 32 x int8),
// element value q*d. len(x) must be a multiple of 32. The per-block sum is taken in
// float32 and scaled once, as llama.cpp's reference path does.
func DotQ8_0(row []byte, x []float32) float32 {
	nb := len(x) / QK
	row = row[:nb*Q8_0Bytes]
	var sum float32
	for b := 0; b < nb; b++ {
		blk := row[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
		d := f16Table[binary.LittleEndian.Uint16(blk)]
		q := blk[2 : 2+QK]
		xs := x[b*QK : b*QK+QK]
		var s0, s1, s2, s3 float32
		for j := 0; j < QK; j += 4 {
			s0 += float32(int8(q[j])) * xs[j]
			s1 += float32(int8(q[j+1])) * xs[j+1]
			s2 += float32(int8(q[j+2])) * xs[j+2]
			s3 += float32(int8(q[j+3])) * xs[j+3]
		}
		sum += ((s0 + s1) + (s2 + s3)) * d
	}
	return sum
}

// DotQ4_0 is Dot for a row of Q4_0 blocks: len(x)/32 blocks of (f16 d, 16 bytes).
// Element j < 16 of a block is the low nibble of byte j and element j+16 its high
// nibble; the value is (nibble-8)*d.
func DotQ4_0(row []byte, x []float32) float32 {
	nb := len(x) / QK
	row = row[:nb*Q4_0Bytes]
	var sum float32
	for b := 0; b < nb; b++ {
		blk := row[b*Q4_0Bytes : (b+1)*Q4_0Bytes]
		d := f16Table[binary.LittleEndian.Uint16(blk)]
		q := blk[2 : 2+QK/2]
		xs := x[b*QK : b*QK+QK]
		var s0, s1 float32
		for j := 0; j < QK/2; j++ {
			s0 += float32(int32(q[j]&0x0f)-8) * xs[j]
			s1 += float32(int32(q[j]>>4)-8) * xs[j+QK/2]
		}
		sum += (s0 + s1) * d
	}
	return sum
}
