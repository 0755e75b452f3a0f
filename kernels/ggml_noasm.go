//go:build purego || !(amd64 || arm64)

package kernels

// Without amd64 assembly every GGML kernel is its pure-Go twin. (When arm64 kernels
// land, this constraint becomes purego || !(amd64 || arm64).)

func quantizeQ8_0Act(dst []byte, x []float32) { quantizeQ8_0ActGeneric(dst, x) }

func gemvQ8_0(out []float32, w []byte, cols int, xq []byte) { gemvQ8_0Generic(out, w, cols, xq) }

func gemvQ4_0(out []float32, w []byte, cols int, xq []byte) { gemvQ4_0Generic(out, w, cols, xq) }

func gemmQ8_0(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	gemmQ8_0Generic(out, rows, w, cols, xq, ntok)
}

func gemmQ4_0(out []float32, rows int, w []byte, cols int, xq []byte, ntok int) {
	gemmQ4_0Generic(out, rows, w, cols, xq, ntok)
}
