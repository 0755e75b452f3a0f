package kernels

// Integer kernels of mole's A8 paths (issue 3, /work/notes/kernels-api.md "K1"):
//
//   - GemvI8 / GemmI8: int8 weights, row-major [rows][cols], times int8 activations;
//   - GemvA8W4 / GemmA8W4: DGQ A8W4 (docs/algorithms.md §1): 4-bit codes mapped through a
//     16-entry int8 table per row and group of 128 columns, times int8 activations;
//   - QuantizeI8: per-token symmetric activation quantization.
//
// Every product is one exact int32 sum per output; the float scales are applied once, as
// out = scaleW[r] * xScale * float32(sum), evaluated left to right, so every ISA path
// (AVX512, AVXVNNI, AVX2, NEON, generic) returns the same bits.
//
// The amd64 kernels feed VPDPBUSD with x+128 as the unsigned operand and subtract
// 128*rowSum[r] afterwards, so rowSum must hold the row sums the contract defines
// (RowSumsI8, RowSumsA8W4 compute them at load time). The generic twin ignores rowSum.
//
// Per-arch hooks (same signatures, arguments already validated): gemvI8, gemmI8,
// gemvA8W4, gemmA8W4, quantizeI8 in int8_amd64.go, int8_arm64.go (K3) and int8_other.go.

// GemvI8 computes out[r] = wScale[r] * xScale * sum_k w[r*cols+k]*x[k] for r < len(out),
// cols = len(x), which must be a multiple of 32. rowSum[r] must be sum_k w[r*cols+k].
func GemvI8(out []float32, w []int8, wScale []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	checkCols(cols, "GemvI8")
	if len(w) < rows*cols || len(wScale) < rows || len(rowSum) < rows {
		panic("kernels: GemvI8: w, wScale or rowSum shorter than len(out) rows")
	}
	if rows == 0 {
		return
	}
	gemvI8(out, w, wScale, rowSum, x, xScale)
}

// GemmI8 is GemvI8 for ntok = len(xScale) tokens: x is [ntok][cols] (cols = len(x)/ntok,
// a multiple of 32) and out[t*rows+r] = wScale[r] * xScale[t] * sum_k w[r*cols+k]*x[t*cols+k].
func GemmI8(out []float32, rows int, w []int8, wScale []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	if ntok == 0 || rows == 0 {
		return
	}
	cols := len(x) / ntok
	if cols*ntok != len(x) {
		panic("kernels: GemmI8: len(x) is not a multiple of len(xScale)")
	}
	checkCols(cols, "GemmI8")
	if len(out) < ntok*rows || len(w) < rows*cols || len(wScale) < rows || len(rowSum) < rows {
		panic("kernels: GemmI8: out, w, wScale or rowSum too short")
	}
	gemmI8(out[:ntok*rows], rows, w, wScale, rowSum, x, xScale)
}

// GemvA8W4 computes out[r] = s1[r] * xScale * sum_k table(r, k) * x[k], cols = len(x) a
// multiple of 32. Per row: cols/2 code bytes, in blocks of 32 codes stored like GGUF
// Q4_0 (in each 16-byte chunk, byte j holds code j in the low nibble and code j+16 in
// the high nibble); then tables[r][g][q] (16 int8 per group g of 128 columns; a trailing
// partial group of cols%128 columns has its own table, so a row has ceil(cols/128)
// tables). table(r, k) = tables[r][k/128][code(r, k)]. rowSum[r] = sum_k table(r, k).
func GemvA8W4(out []float32, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	checkCols(cols, "GemvA8W4")
	if len(codes) < rows*cols/2 || len(tables) < rows*a8w4Groups(cols)*16 || len(s1) < rows || len(rowSum) < rows {
		panic("kernels: GemvA8W4: codes, tables, s1 or rowSum shorter than len(out) rows")
	}
	if rows == 0 {
		return
	}
	gemvA8W4(out, codes, tables, s1, rowSum, x, xScale)
}

// GemmA8W4 is GemvA8W4 for ntok = len(xScale) tokens; x is [ntok][cols] and out is
// token-major: out[t*rows+r].
func GemmA8W4(out []float32, rows int, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	if ntok == 0 || rows == 0 {
		return
	}
	cols := len(x) / ntok
	if cols*ntok != len(x) {
		panic("kernels: GemmA8W4: len(x) is not a multiple of len(xScale)")
	}
	checkCols(cols, "GemmA8W4")
	if len(out) < ntok*rows || len(codes) < rows*cols/2 || len(tables) < rows*a8w4Groups(cols)*16 || len(s1) < rows || len(rowSum) < rows {
		panic("kernels: GemmA8W4: out, codes, tables, s1 or rowSum too short")
	}
	gemmA8W4(out[:ntok*rows], rows, codes, tables, s1, rowSum, x, xScale)
}

// QuantizeI8 quantizes x per token, symmetrically: scale = max|x|/127 and
// dst[i] = round(x[i]/scale) (ties away from zero, computed as x[i]*(127/max|x|)),
// in [-127, 127]. It returns the scale (0 for an all-zero x, with dst zeroed).
func QuantizeI8(dst []int8, x []float32) (scale float32) {
	if len(dst) < len(x) {
		panic("kernels: QuantizeI8: dst shorter than x")
	}
	return quantizeI8(dst, x)
}

// RowSumsI8 fills rowSum[r] = sum_k w[r*cols+k] for r < len(rowSum) (load-time helper).
func RowSumsI8(rowSum []int32, w []int8, cols int) {
	for r := range rowSum {
		var s int32
		for _, v := range w[r*cols : (r+1)*cols] {
			s += int32(v)
		}
		rowSum[r] = s
	}
}

// RowSumsA8W4 fills rowSum[r] = sum_k table(r, k) for the A8W4 layout of GemvA8W4.
func RowSumsA8W4(rowSum []int32, codes []byte, tables []int8, cols int) {
	checkCols(cols, "RowSumsA8W4")
	cb, tb := cols/2, a8w4Groups(cols)*16
	for r := range rowSum {
		c, t := codes[r*cb:(r+1)*cb], tables[r*tb:(r+1)*tb]
		var s int32
		for i, b := range c {
			g := (i / 64) * 16
			s += int32(t[g+int(b&15)]) + int32(t[g+int(b>>4)])
		}
		rowSum[r] = s
	}
}

func checkCols(cols int, fn string) {
	if cols%32 != 0 {
		panic("kernels: " + fn + ": cols must be a multiple of 32 (pad the rows)")
	}
}
