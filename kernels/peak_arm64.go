//go:build !purego

package kernels

// Register-only peak loops (peak_arm64.s). Each returns lane 0 of the sum of its
// accumulators.

//go:noescape
func intPeakSDOT(n int) int32

//go:noescape
func intPeakSMULL(n int) int32

//go:noescape
func floatPeakNEON(n int) float32

// intPeak runs n iterations of path isa's integer peak loop: the MACs done and the
// checksum. NEON uses SDOT when the CPU has dotprod, as the int8 kernels do.
func intPeak(isa ISA, n int) (int64, int32) {
	if n <= 0 {
		return 0, 0
	}
	if isa == NEON {
		if HasDotProd() {
			return 16 * 16 * int64(n), intPeakSDOT(n)
		}
		return 16 * 16 * int64(n), intPeakSMULL(n)
	}
	return intPeakGeneric(n)
}

// floatPeak runs n iterations of path isa's float32 FMA peak loop: the FLOPs and the checksum.
func floatPeak(isa ISA, n int) (int64, float32) {
	if n <= 0 {
		return 0, 0
	}
	if isa == NEON {
		return 16 * 4 * 2 * int64(n), floatPeakNEON(n)
	}
	return floatPeakGeneric(n)
}
