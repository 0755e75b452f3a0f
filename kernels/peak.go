package kernels

import "sync/atomic"

// Compute peaks of the kernel paths, for the roofline of `mole bench` (bench.MeasurePeak)
// and the benchmarks' "% of peak": register-only loops of independent multiply-adds, so
// that neither memory nor a dependency chain limits them and the result is the issue
// rate of the multiplier itself. The caller times a call; the functions return the work
// done. One call cannot be preempted (assembly): keep n at about a millisecond of work.
//
// Integer loops (the forms the int8 kernels use; u8 3 x s8 5 in every lane):
//
//	avx512   16 x VPDPBUSD zmm                     1024 MACs per iteration
//	avxvnni  14 x VPDPBUSD ymm ({vex}, byte-coded)  448 MACs
//	avx2     12 x VPMADDUBSW+VPMADDWD+VPADDD ymm   384 MACs
//	neon     16 x SDOT .16B (dotprod), else        256 MACs
//	         16 x SMULL+SMULL2+2 SADALP            256 MACs
//	generic  12 scalar int32 s = s*a + b in Go       12 MACs
//
// Float loops (FMA on float32, 2 FLOPs per lane; the forms the float kernels use):
//
//	avx512            16 x VFMADD231PS zmm   512 FLOPs per iteration
//	avxvnni, avx2     14 x VFMADD231PS ymm   224 FLOPs
//	neon              16 x FMLA .4S          128 FLOPs
//	generic           12 scalar float32 f = f*a + b in Go   24 FLOPs

// IntPeakMACs runs n iterations of the active path's integer multiply peak loop and
// returns the int8 multiply-accumulates it did (n times the per-iteration count above).
func IntPeakMACs(n int) (macs int64) {
	macs, sum := intPeak(active, n)
	peakSink.Add(int64(sum))
	return macs
}

// FloatPeakFLOPs runs n iterations of the active path's float32 FMA peak loop and returns
// the floating-point operations it did (2 per fused multiply-add lane).
func FloatPeakFLOPs(n int) (flops int64) {
	flops, sum := floatPeak(active, n)
	peakSink.Add(int64(sum))
	return flops
}

// peakSink keeps the loops' checksums observable (stores to a package variable are
// never optimised away). Atomic: the peak is measured on several threads at once.
var peakSink atomic.Int64

// peakMulA, peakAddB and the float pair are the generic loops' operands: package
// variables, so that the compiler cannot fold the multiplies into shifts.
var (
	peakMulA, peakAddB   int32   = 3, 5
	peakMulAF, peakAddBF float32 = 1, 1
)

// intPeakGeneric runs n iterations of 12 independent chains s = s*a + b (one IMUL and
// one ADD each: the scalar form of the generic int8 kernels' inner product). It returns
// the MACs and the wrapping sum of the chains, which start at 0..11.
func intPeakGeneric(n int) (int64, int32) {
	a, b := peakMulA, peakAddB
	s0, s1, s2, s3, s4, s5 := int32(0), int32(1), int32(2), int32(3), int32(4), int32(5)
	s6, s7, s8, s9, s10, s11 := int32(6), int32(7), int32(8), int32(9), int32(10), int32(11)
	for range n {
		s0 = s0*a + b
		s1 = s1*a + b
		s2 = s2*a + b
		s3 = s3*a + b
		s4 = s4*a + b
		s5 = s5*a + b
		s6 = s6*a + b
		s7 = s7*a + b
		s8 = s8*a + b
		s9 = s9*a + b
		s10 = s10*a + b
		s11 = s11*a + b
	}
	return 12 * int64(max(n, 0)), s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + s10 + s11
}

// floatPeakGeneric runs n iterations of 12 independent chains f = f*a + b in float32
// (a = b = 1: each chain counts up from 0..11, exactly below 2^24, and never meets a
// denormal). It returns the FLOPs and the sum of the chains.
func floatPeakGeneric(n int) (int64, float32) {
	a, b := peakMulAF, peakAddBF
	// Distinct starts (0..11), or the compiler merges the identical chains into one.
	f0, f1, f2, f3, f4, f5 := float32(0), float32(1), float32(2), float32(3), float32(4), float32(5)
	f6, f7, f8, f9, f10, f11 := float32(6), float32(7), float32(8), float32(9), float32(10), float32(11)
	for range n {
		f0 = f0*a + b
		f1 = f1*a + b
		f2 = f2*a + b
		f3 = f3*a + b
		f4 = f4*a + b
		f5 = f5*a + b
		f6 = f6*a + b
		f7 = f7*a + b
		f8 = f8*a + b
		f9 = f9*a + b
		f10 = f10*a + b
		f11 = f11*a + b
	}
	return 24 * int64(max(n, 0)), f0 + f1 + f2 + f3 + f4 + f5 + f6 + f7 + f8 + f9 + f10 + f11
}

// PeakLoops names the loops IntPeakMACs and FloatPeakFLOPs run on the active path.
func PeakLoops() (intLoop, floatLoop string) {
	switch active {
	case AVX512:
		return "16 x VPDPBUSD zmm", "16 x VFMADD231PS zmm"
	case AVXVNNI:
		return "14 x {vex} VPDPBUSD ymm", "14 x VFMADD231PS ymm"
	case AVX2:
		return "12 x VPMADDUBSW+VPMADDWD+VPADDD ymm", "14 x VFMADD231PS ymm"
	case NEON:
		if HasDotProd() {
			return "16 x SDOT .16B", "16 x FMLA .4S"
		}
		return "16 x SMULL+SMULL2+2 SADALP .16B", "16 x FMLA .4S"
	}
	return "12 x scalar int32 multiply-add (Go)", "12 x scalar float32 multiply-add (Go)"
}
