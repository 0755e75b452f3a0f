//go:build !purego

package kernels

func streamRead(buf []byte) uint64 {
	n := len(buf) &^ 511
	var s uint64
	if n > 0 {
		switch active {
		case AVX512:
			s = streamReadAVX512(&buf[0], n)
		case AVXVNNI, AVX2:
			s = streamReadAVX2(&buf[0], n)
		default:
			n = 0
		}
	}
	return s + streamReadGeneric(buf[n:])
}
