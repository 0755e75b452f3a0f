//go:build purego || !amd64

package kernels

// Without amd64 assembly the float32 kernels are their pure-Go twins (arm64 included:
// its float paths stay generic for now).

func dotImpl(a, b []float32) float32                  { return dotGeneric(a, b) }
func dotF32BytesImpl(row []byte, x []float32) float32 { return dotF32BytesGeneric(row, x) }
func dotF16Impl(row []byte, x []float32) float32      { return dotF16Generic(row, x) }
func axpyImpl(y []float32, a float32, x []float32)    { axpyGeneric(y, a, x) }
func rmsNormImpl(out, x, w []float32, eps float32)    { rmsNormGeneric(out, x, w, eps) }
func siluMulImpl(gate, up []float32)                  { siluMulGeneric(gate, up) }
func softmaxThreePassImpl(x []float32)                { softmaxThreePassGeneric(x) }
func softmaxTwoPassImpl(x []float32)                  { softmaxTwoPassGeneric(x) }
func softmaxImpl(x []float32)                         { softmaxThreePassGeneric(x) }

// SoftmaxCrossover is the row length from which Softmax uses the two-pass algorithm on
// the active path (0: never, the generic path always runs three passes).
func SoftmaxCrossover() int { return 0 }

func dotF16MultiImpl(row []byte, xs [][]float32, out []float32) {
	dotF16MultiGeneric(row, xs, out)
}

func dotF32BytesMultiImpl(row []byte, xs [][]float32, out []float32) {
	dotF32BytesMultiGeneric(row, xs, out)
}
