package kernels

import "fmt"

// GGUF Q8_0 / Q4_0 weights times activations quantised on the fly to Q8_0 blocks, as
// llama.cpp computes them: the activation vector is rounded once into llama.cpp's
// block_q8_0 (QuantizeQ8_0Act), then every row is an integer dot product per 32-element
// block scaled by d_w*d_x:
//
//	out[r] = sum over blocks b, in order, of float32(isum[r][b]) * float32(d_w[r][b]*d_x[b])
//
// with each step one fused multiply-add in float32. Every ISA path returns the same bits
// as the pure-Go twins in ggml_generic.go.

// Q8ActBytes returns the size of the Q8_0 activation blocks of n floats (n a multiple of 32).
func Q8ActBytes(n int) int { return n / QK * Q8_0Bytes }

// QuantizeQ8_0Act rounds x (len a multiple of 32) into llama.cpp's block_q8_0 layout
// in dst (len at least len(x)/32*34) the way llama.cpp's x86 quantize_row_q8_0 does:
// amax = max|x|, d = f16(amax/127), q = round-half-even(x * (127/amax)). q is always
// in [-127, 127] for finite x. It does not allocate.
func QuantizeQ8_0Act(dst []byte, x []float32) {
	if len(x)%QK != 0 {
		panic(fmt.Sprintf("kernels: QuantizeQ8_0Act of %d floats (not a multiple of %d)", len(x), QK))
	}
	if len(dst) < Q8ActBytes(len(x)) {
		panic(fmt.Sprintf("kernels: QuantizeQ8_0Act: dst %d bytes, need %d", len(dst), Q8ActBytes(len(x))))
	}
	quantizeQ8_0Act(dst[:Q8ActBytes(len(x))], x)
}

func checkGGML(name string, rows int, w []byte, cols, blockBytes int, xq []byte, ntok int) {
	if cols <= 0 || cols%QK != 0 {
		panic(fmt.Sprintf("kernels: %s: cols %d is not a positive multiple of %d", name, cols, QK))
	}
	if need := rows * (cols / QK) * blockBytes; len(w) < need {
		panic(fmt.Sprintf("kernels: %s: w has %d bytes, %d rows of %d columns need %d", name, len(w), rows, cols, need))
	}
	if need := ntok * Q8ActBytes(cols); len(xq) < need {
		panic(fmt.Sprintf("kernels: %s: xq has %d bytes, need %d", name, len(xq), need))
	}
}

// GemvQ8_0 computes out[r] = row r of w · x for len(out) rows of Q8_0 blocks (cols/32
// blocks of 34 bytes per row) against xq, the activation quantised by QuantizeQ8_0Act
// (its values must lie in [-127, 127], which QuantizeQ8_0Act guarantees).
func GemvQ8_0(out []float32, w []byte, cols int, xq []byte) {
	checkGGML("GemvQ8_0", len(out), w, cols, Q8_0Bytes, xq, 1)
	if len(out) == 0 {
		return
	}
	nb := cols / QK
	gemvQ8_0(out, w[:len(out)*nb*Q8_0Bytes], cols, xq[:nb*Q8_0Bytes])
}

// GemvQ4_0 is GemvQ8_0 for rows of Q4_0 blocks (18 bytes per 32 elements).
func GemvQ4_0(out []float32, w []byte, cols int, xq []byte) {
	checkGGML("GemvQ4_0", len(out), w, cols, Q4_0Bytes, xq, 1)
	if len(out) == 0 {
		return
	}
	nb := cols / QK
	gemvQ4_0(out, w[:len(out)*nb*Q4_0Bytes], cols, xq[:nb*Q8_0Bytes])
}

// GemmQ8_0 is GemvQ8_0 for ntok activation vectors, quantised one after the other in
// xq: out[t*rows+r] = row r of w · token t. Each result equals GemvQ8_0's bit for bit.
func GemmQ8_0(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	checkGGML("GemmQ8_0", rows, w, cols, Q8_0Bytes, xq, ntok)
	if len(out) < rows*ntok {
		panic(fmt.Sprintf("kernels: GemmQ8_0: out has %d floats, need %d", len(out), rows*ntok))
	}
	if rows == 0 || ntok <= 0 {
		return
	}
	nb := cols / QK
	gemmQ8_0(out[:rows*ntok], rows, w[:rows*nb*Q8_0Bytes], cols, xq[:ntok*nb*Q8_0Bytes], ntok)
}

// GemmQ4_0 is GemmQ8_0 for Q4_0 weights.
func GemmQ4_0(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	checkGGML("GemmQ4_0", rows, w, cols, Q4_0Bytes, xq, ntok)
	if len(out) < rows*ntok {
		panic(fmt.Sprintf("kernels: GemmQ4_0: out has %d floats, need %d", len(out), rows*ntok))
	}
	if rows == 0 || ntok <= 0 {
		return
	}
	nb := cols / QK
	gemmQ4_0(out[:rows*ntok], rows, w[:rows*nb*Q4_0Bytes], cols, xq[:ntok*nb*Q8_0Bytes], ntok)
}
