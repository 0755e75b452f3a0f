//go:build purego || !amd64

package kernels

// No MWQ assembly outside amd64 yet: arm64 and purego builds run the generic twin.
func mwqDots(dots []int32, blocks []byte, stride, off, nb int, x []int8) {
	mwqDotsGeneric(dots, blocks, stride, off, nb, x)
}
