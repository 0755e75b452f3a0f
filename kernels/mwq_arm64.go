//go:build !purego

package kernels

// NEON MWQ dot kernels (mwq_arm64.s, body neon_mwq_arm64.h): the arguments of
// mwqDotsGeneric with blocks already advanced past the block header (off) and the
// activation group count G = len(x)/128; MWQDots has checked the lengths. Bit-planes
// become byte masks (TBL spreads each mask byte over 8 lanes, CMTST keeps the lane's
// bit); the SDOT form multiplies the activations by the masks (-1 or 0) and needs
// HasDotProd(), the other ANDs them and sums pairwise (SADALP), as a Cortex-A72 can.

//go:noescape
func mwqDotsSDOT(dots *int32, n int, blocks *byte, stride int, nb int, x *int8, groups int)

//go:noescape
func mwqDotsNEON(dots *int32, n int, blocks *byte, stride int, nb int, x *int8, groups int)

// mwqDots is MWQDots after validation: the NEON kernels on the NEON path, the generic
// twin otherwise (SetISA(Generic) in tests and on the command line).
func mwqDots(dots []int32, blocks []byte, stride, off, nb int, x []int8) {
	if active != NEON {
		mwqDotsGeneric(dots, blocks, stride, off, nb, x)
		return
	}
	mwqDotsArm64(dots, blocks, stride, off, nb, x, HasDotProd())
}

// mwqDotsArm64 runs the SDOT form when sdot, else the widening one.
func mwqDotsArm64(dots []int32, blocks []byte, stride, off, nb int, x []int8, sdot bool) {
	if len(dots) == 0 {
		return
	}
	if sdot {
		mwqDotsSDOT(&dots[0], len(dots), &blocks[off], stride, nb, &x[0], len(x)/MWQGroup)
	} else {
		mwqDotsNEON(&dots[0], len(dots), &blocks[off], stride, nb, &x[0], len(x)/MWQGroup)
	}
}
