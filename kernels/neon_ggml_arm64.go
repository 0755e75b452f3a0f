//go:build !purego

package kernels

// NEON GGML kernels (neon_ggml_arm64.s): each call computes strips of four rows, one row
// per float lane, with the per-block float steps of gemvQ8_0Generic/gemvQ4_0Generic
// (d = d_w*d_x rounded once, acc = fma(float32(isum), d, acc) in block order), so every
// row has the same bits as the generic twin. stride is the row size in bytes; stride 0
// makes all four lanes compute the same row (used for the last rows of a matrix).

//go:noescape
func q8_0StripsSDOT(out *float32, w *byte, stride, strips, nb int, xq *byte)

//go:noescape
func q4_0StripsSDOT(out *float32, w *byte, stride, strips, nb int, xq *byte)

//go:noescape
func q8_0StripsNEON(out *float32, w *byte, stride, strips, nb int, xq *byte)

//go:noescape
func q4_0StripsNEON(out *float32, w *byte, stride, strips, nb int, xq *byte)

// neonGGML selects one of the four kernels (direct calls only: a func value would make
// the pointer arguments escape).
type neonGGML struct{ q4, sdot bool }

func (k neonGGML) call(out *float32, w *byte, stride, strips, nb int, xq *byte) {
	switch {
	case k.q4 && k.sdot:
		q4_0StripsSDOT(out, w, stride, strips, nb, xq)
	case k.q4:
		q4_0StripsNEON(out, w, stride, strips, nb, xq)
	case k.sdot:
		q8_0StripsSDOT(out, w, stride, strips, nb, xq)
	default:
		q8_0StripsNEON(out, w, stride, strips, nb, xq)
	}
}

func (k neonGGML) rowBytes(nb int) int {
	if k.q4 {
		return nb * Q4_0Bytes
	}
	return nb * Q8_0Bytes
}

// gemv computes len(out) rows of w (cols/32 blocks each) against the quantised xq.
// The slices are validated and exactly sized by the exported function.
func (k neonGGML) gemv(out []float32, w []byte, cols int, xq []byte) {
	rows, nb := len(out), cols/QK
	if rows == 0 || nb == 0 {
		return
	}
	rb := k.rowBytes(nb)
	_ = w[rows*rb-1]
	_ = xq[nb*Q8_0Bytes-1]
	strips := rows / 4
	if strips > 0 {
		k.call(&out[0], &w[0], rb, strips, nb, &xq[0])
	}
	for r := strips * 4; r < rows; r++ {
		var tmp [4]float32
		k.call(&tmp[0], &w[r*rb], 0, 1, nb, &xq[0])
		out[r] = tmp[0]
	}
}

// gemm runs each 4-row strip against every token while the strip is in L1, two tokens
// per weight load (an odd last token and the last rows%4 rows one at a time):
// out[t*rows+r] = row r . token t, equal bit for bit to gemv per token.
func (k neonGGML) gemm(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	nb := cols / QK
	if rows == 0 || nb == 0 || ntok <= 0 {
		return
	}
	rb, xb := k.rowBytes(nb), nb*Q8_0Bytes
	_ = w[rows*rb-1]
	_ = xq[ntok*xb-1]
	_ = out[ntok*rows-1]
	r := 0
	for ; r+4 <= rows; r += 4 {
		if np := ntok / 2; np > 0 {
			k.pairs(&out[r], 4*rows, &w[r*rb], rb, nb, np, &xq[0])
		}
		if t := ntok - 1; ntok%2 != 0 {
			k.call(&out[t*rows+r], &w[r*rb], rb, 1, nb, &xq[t*xb])
		}
	}
	for ; r < rows; r++ {
		for t := 0; t < ntok; t++ {
			var tmp [4]float32
			k.call(&tmp[0], &w[r*rb], 0, 1, nb, &xq[t*xb])
			out[t*rows+r] = tmp[0]
		}
	}
}

// q*_0Pairs*: one 4-row strip against npairs pairs of tokens (out + (2p+j)*ostride bytes
// gets token 2p+j's four results); each weight block is loaded (and unpacked) once for
// two tokens. Same per-lane float steps as the one-token kernels.
//
//go:noescape
func q8_0PairsSDOT(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)

//go:noescape
func q4_0PairsSDOT(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)

//go:noescape
func q8_0PairsNEON(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)

//go:noescape
func q4_0PairsNEON(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte)

func (k neonGGML) pairs(out *float32, ostride int, w *byte, stride, nb, npairs int, xq *byte) {
	switch {
	case k.q4 && k.sdot:
		q4_0PairsSDOT(out, ostride, w, stride, nb, npairs, xq)
	case k.q4:
		q4_0PairsNEON(out, ostride, w, stride, nb, npairs, xq)
	case k.sdot:
		q8_0PairsSDOT(out, ostride, w, stride, nb, npairs, xq)
	default:
		q8_0PairsNEON(out, ostride, w, stride, nb, npairs, xq)
	}
}
