package kernels

import "encoding/binary"

// StreamRead returns the wrapping sum of buf read as little-endian uint64 words (plus
// the trailing len%8 bytes, each added as a value). It exists to measure the streaming
// read bandwidth of this machine next to the GEMV kernels (BenchmarkStream*): the
// amd64 versions are AVX-512 / AVX2 loops with 8 independent accumulators.
func StreamRead(buf []byte) uint64 { return streamRead(buf) }

func streamReadGeneric(buf []byte) uint64 {
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+32 <= len(buf); i += 32 {
		b := buf[i : i+32]
		s0 += binary.LittleEndian.Uint64(b)
		s1 += binary.LittleEndian.Uint64(b[8:])
		s2 += binary.LittleEndian.Uint64(b[16:])
		s3 += binary.LittleEndian.Uint64(b[24:])
	}
	for ; i+8 <= len(buf); i += 8 {
		s0 += binary.LittleEndian.Uint64(buf[i:])
	}
	for ; i < len(buf); i++ {
		s0 += uint64(buf[i])
	}
	return s0 + s1 + s2 + s3
}
