//go:build !purego

package kernels

// arm64 hooks of the GGML kernels: the NEON path runs neon_ggml_arm64.s (SDOT when the
// CPU has dotprod, else SMULL/SADALP); every other ISA value runs the pure-Go twin.
// QuantizeQ8_0Act stays in Go (its rounding must match llama.cpp's; it is O(cols)).

func quantizeQ8_0Act(dst []byte, x []float32) { quantizeQ8_0ActGeneric(dst, x) }

func gemvQ8_0(out []float32, w []byte, cols int, xq []byte) {
	if Active() != NEON {
		gemvQ8_0Generic(out, w, cols, xq)
		return
	}
	neonGGML{q4: false, sdot: HasDotProd()}.gemv(out, w, cols, xq)
}

func gemvQ4_0(out []float32, w []byte, cols int, xq []byte) {
	if Active() != NEON {
		gemvQ4_0Generic(out, w, cols, xq)
		return
	}
	neonGGML{q4: true, sdot: HasDotProd()}.gemv(out, w, cols, xq)
}

func gemmQ8_0(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	if Active() != NEON {
		gemmQ8_0Generic(out, rows, w, cols, xq, ntok)
		return
	}
	neonGGML{q4: false, sdot: HasDotProd()}.gemm(out, rows, w, cols, xq, ntok)
}

func gemmQ4_0(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	if Active() != NEON {
		gemmQ4_0Generic(out, rows, w, cols, xq, ntok)
		return
	}
	neonGGML{q4: true, sdot: HasDotProd()}.gemm(out, rows, w, cols, xq, ntok)
}
