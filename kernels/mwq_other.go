//go:build purego || !(amd64 || arm64)

package kernels

// No MWQ assembly outside amd64 and arm64: other architectures and purego builds run the
// generic twin.
func mwqDots(dots []int32, blocks []byte, stride, off, nb int, x []int8) {
	mwqDotsGeneric(dots, blocks, stride, off, nb, x)
}
