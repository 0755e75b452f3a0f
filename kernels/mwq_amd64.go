//go:build !purego

package kernels

// mwqDots runs the assembly of asm/mwq: AVX-512 (mask registers) or AVX2 (byte masks
// built with shuffles), which AVXVNNI also uses (it adds no mask registers and the
// int16 sums need no VNNI).
func mwqDots(dots []int32, blocks []byte, stride, off, nb int, x []int8) {
	switch active {
	case AVX512:
		mwqDotsAVX512(&dots[0], len(dots), &blocks[off], stride, nb, &x[0], len(x)/MWQGroup)
	case AVX2, AVXVNNI:
		mwqDotsAVX2(&dots[0], len(dots), &blocks[off], stride, nb, &x[0], len(x)/MWQGroup)
	default:
		mwqDotsGeneric(dots, blocks, stride, off, nb, x)
	}
}
