package kernels

import "fmt"

// Batched dot products: one weight row against several activation vectors. Each weight
// chunk is loaded (and, for F16, converted) once for all the vectors while it is in
// registers, and every vector is summed in exactly the order the single-vector kernel of
// the active ISA uses, so out[k] is bit for bit DotF16(row, xs[k]) (DotF32Bytes,
// DotBF16): results never depend on which other vectors share the call. That is what
// lets a batched forward step equal token-by-token decoding at any batch size.

// checkMulti panics unless every xs[k] has the length of xs[0], len(out) >= len(xs) and
// row holds elemBytes*len(xs[0]) bytes; it returns that length.
func checkMulti(name string, row []byte, xs [][]float32, out []float32, elemBytes int) int {
	if len(xs) == 0 {
		return 0
	}
	n := len(xs[0])
	for k, x := range xs {
		if len(x) != n {
			panic(fmt.Sprintf("kernels: %s: vector %d has %d elements, vector 0 has %d", name, k, len(x), n))
		}
	}
	if len(out) < len(xs) {
		panic(fmt.Sprintf("kernels: %s: out has %d elements for %d vectors", name, len(out), len(xs)))
	}
	if len(row) < elemBytes*n {
		panic(fmt.Sprintf("kernels: %s: row has %d bytes, need %d", name, len(row), elemBytes*n))
	}
	return n
}

// DotF16Multi sets out[k] = DotF16(row, xs[k]) for every k (all xs[k] of one length;
// len(out) >= len(xs)), bit for bit, reading the binary16 row once per few vectors.
// It does not allocate.
func DotF16Multi(row []byte, xs [][]float32, out []float32) {
	n := checkMulti("DotF16Multi", row, xs, out, 2)
	if len(xs) > 0 {
		dotF16MultiImpl(row[:2*n], xs, out[:len(xs)])
	}
}

// DotF32BytesMulti sets out[k] = DotF32Bytes(row, xs[k]) for every k, bit for bit (see
// DotF16Multi).
func DotF32BytesMulti(row []byte, xs [][]float32, out []float32) {
	n := checkMulti("DotF32BytesMulti", row, xs, out, 4)
	if len(xs) > 0 {
		dotF32BytesMultiImpl(row[:4*n], xs, out[:len(xs)])
	}
}

// DotBF16Multi sets out[k] = DotBF16(row, xs[k]) for every k, bit for bit (see
// DotF16Multi). DotBF16 has no SIMD kernel yet, so this is one DotBF16 per vector.
func DotBF16Multi(row []byte, xs [][]float32, out []float32) {
	n := checkMulti("DotBF16Multi", row, xs, out, 2)
	for k, x := range xs {
		out[k] = DotBF16(row[:2*n], x)
	}
}
