package kernels

// Integer kernels of mole's A8 paths (docs/algorithms.md §5):
//
//   - GemvI8 / GemmI8: int8 weights, row-major [rows][cols], times int8 activations;
//   - GemvA8W4 / GemmA8W4: DGQ A8W4 (docs/algorithms.md §1): 4-bit codes mapped through a
//     16-entry int8 table per row and group of 128 columns, times int8 activations;
//   - GemvA8W4G / GemmA8W4G: the same products on the stored (z, S2) pair of each group
//     instead of its table (what the engine runs: 2 bytes per group instead of 16);
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

// GemvA8W4G is GemvA8W4 on the stored form of the group parameters: instead of the
// 16-byte tables, groups holds 2 bytes per (row, group of 128 columns), the pair
// (z, S2) as MOLE_A8W4's ".group" tensor stores it (docs/format.md), row r's ceil(cols/128)
// pairs at groups[2*r*ceil(cols/128):], with 0 <= z <= 15 and 0 <= S2 <= 127 (the
// engine checks this at load; other bytes are read safely but give unspecified sums).
// The weight of code q in the group is table(q) = max(-127, min(127, S2*(q-z)))
// (A8W4Tables), so the result equals GemvA8W4 on the expanded tables bit for bit. The
// weights stream 66 bytes per 128 columns instead of 80: the kernels take each group's
// table from a 32 KiB table of all valid pairs (a8w4LUT) that stays in cache.
// rowSum[r] = sum_k table(r, k) (RowSumsA8W4G).
func GemvA8W4G(out []float32, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	checkCols(cols, "GemvA8W4G")
	if len(codes) < rows*cols/2 || len(groups) < rows*a8w4Groups(cols)*2 || len(s1) < rows || len(rowSum) < rows {
		panic("kernels: GemvA8W4G: codes, groups, s1 or rowSum shorter than len(out) rows")
	}
	if rows == 0 {
		return
	}
	gemvA8W4G(out, codes, groups, s1, rowSum, x, xScale)
}

// GemmA8W4G is GemvA8W4G for ntok = len(xScale) tokens; x is [ntok][cols] and out is
// token-major: out[t*rows+r]. It equals GemmA8W4 on the expanded tables bit for bit.
func GemmA8W4G(out []float32, rows int, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	if ntok == 0 || rows == 0 {
		return
	}
	cols := len(x) / ntok
	if cols*ntok != len(x) {
		panic("kernels: GemmA8W4G: len(x) is not a multiple of len(xScale)")
	}
	checkCols(cols, "GemmA8W4G")
	if len(out) < ntok*rows || len(codes) < rows*cols/2 || len(groups) < rows*a8w4Groups(cols)*2 || len(s1) < rows || len(rowSum) < rows {
		panic("kernels: GemmA8W4G: out, codes, groups, s1 or rowSum too short")
	}
	gemmA8W4G(out[:ntok*rows], rows, codes, groups, s1, rowSum, x, xScale)
}

// A8W4Tables expands len(dst)/16 stored (z, S2) pairs into the 16-entry tables of
// GemvA8W4: dst[16*i+q] = max(-127, min(127, int8(groups[2i+1]) * (q - int8(groups[2i])))).
// The quantizer keeps |S2*(q-z)| <= 127 for every code it uses, so the clamp only
// touches codes a group never uses.
func A8W4Tables(dst []int8, groups []byte) {
	n := len(dst) / 16
	if len(groups) < 2*n {
		panic("kernels: A8W4Tables: groups shorter than len(dst)/16 pairs")
	}
	for i := 0; i < n; i++ {
		z, s2 := groups[2*i], groups[2*i+1]
		t := (*[16]int8)(dst[16*i : 16*i+16])
		if z < 16 && s2 < 128 {
			o := a8w4LUTIndex(z, s2)
			*t = *(*[16]int8)(a8w4LUT[o : o+16]) // two 8-byte moves, no memmove call
			continue
		}
		a8w4Table(t[:], z, s2)
	}
}

// a8w4Table writes the table of one pair (see A8W4Tables).
func a8w4Table(t []int8, z, s2 byte) {
	for q := range t[:16] {
		t[q] = int8(max(-127, min(127, int(int8(s2))*(q-int(int8(z))))))
	}
}

// a8w4LUT holds the tables of all valid pairs (z 0..15, S2 0..127), the table of (z, S2)
// at a8w4LUTIndex(z, S2): the kernels' source of each group's table (asm/int8 gemvA8W4G
// computes the same index with PEXT).
var a8w4LUT = func() []int8 {
	t := make([]int8, 16*2048)
	for s2 := 0; s2 < 128; s2++ {
		for z := 0; z < 16; z++ {
			a8w4Table(t[a8w4LUTIndex(byte(z), byte(s2)):], byte(z), byte(s2))
		}
	}
	return t
}()

// a8w4LUTIndex is the offset of the table of a valid pair in a8w4LUT.
func a8w4LUTIndex(z, s2 byte) int { return 16 * (int(s2)<<4 | int(z)) }

// RowSumsA8W4G fills rowSum[r] = sum_k table(r, k) for the layout of GemvA8W4G
// (load-time helper; on AVX-512 it runs at the GEMV's speed).
func RowSumsA8W4G(rowSum []int32, codes []byte, groups []byte, cols int) {
	checkCols(cols, "RowSumsA8W4G")
	if rows := len(rowSum); len(codes) < rows*cols/2 || len(groups) < rows*a8w4Groups(cols)*2 {
		panic("kernels: RowSumsA8W4G: codes or groups shorter than len(rowSum) rows")
	}
	if len(rowSum) == 0 || cols == 0 {
		clear(rowSum)
		return
	}
	rowSumsA8W4G(rowSum, codes, groups, cols)
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

// a8w4Tables holds the table buffers of the table-expanding A8W4G fallbacks (per call,
// so concurrent calls each get their own without allocating in steady state).
var a8w4Tables = newScratchPool[int8](64)

// a8w4ChunkBytes bounds the tables a fallback expands at once, so that they stay in L1
// while the rows' codes stream past.
const a8w4ChunkBytes = 8 << 10

// a8w4ChunkRows is how many rows' tables (tb bytes each) a fallback expands at once: a
// multiple of 4 (the strips of the amd64 kernels), at least 4.
func a8w4ChunkRows(rows, tb int) int {
	return min(rows, max(4, a8w4ChunkBytes/tb&^3))
}

func checkCols(cols int, fn string) {
	if cols%32 != 0 {
		panic("kernels: " + fn + ": cols must be a multiple of 32 (pad the rows)")
	}
}
