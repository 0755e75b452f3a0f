//go:build purego || !(amd64 || arm64)

package kernels

func intPeak(isa ISA, n int) (int64, int32) {
	if n <= 0 {
		return 0, 0
	}
	return intPeakGeneric(n)
}

func floatPeak(isa ISA, n int) (int64, float32) {
	if n <= 0 {
		return 0, 0
	}
	return floatPeakGeneric(n)
}
