//go:build !purego

package kernels

import (
	"math"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// amd64 drivers of the int8 kernels. The assembly works on strips of rows (4 in the
// GEMVs, gemmI8Rows in the AVX-512 GEMMs, 3 in the AVX-VNNI and AVX2 GEMMs of
// int8_vex_amd64.go) and returns raw int32 sums of (x+128)*w into out itself (viewed
// as []int32); the epilogue subtracts 128*rowSum and applies the scales. Row counts that are not a multiple of the strip recompute the last strip
// (overlapping strip); GEMVs of fewer than 4 rows run the strip kernel with row stride 0
// into a stack buffer. GEMM token tails work the same way (an overlapping last tile).

// Hand-written VEX kernels (int8_avx2_amd64.s); the masks of the AVX-512 signatures are
// ignored there (the ymm loops need no partial loads: cols is a multiple of 32).

//go:noescape
func gemvI8AVXVNNI(dots *int32, w *int8, stride int, x *int8, cols int, nstrips int)

//go:noescape
func gemvI8AVX2(dots *int32, w *int8, stride int, x *int8, cols int, nstrips int)

//go:noescape
func gemvA8W4AVXVNNI(dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, cols int, nstrips int)

//go:noescape
func gemvA8W4AVX2(dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, cols int, nstrips int)

// maskBytes is a byte mask of the low n bytes (n clamped to 0..64).
func maskBytes(n int) uint64 {
	if n <= 0 {
		return 0
	}
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<uint(n) - 1
}

// i8Masks: AVX-512 tail masks for the cols%128 bytes after the last full 128.
func i8Masks(cols int) (m0, m1 uint64) {
	rem := cols & 127
	return maskBytes(min(rem, 64)), maskBytes(rem - 64)
}

// a4Masks: AVX-512 masks for a trailing partial group of cols%128 codes.
func a4Masks(cols int) (kc, kx0, kx1 uint64) {
	rem := cols & 127
	return maskBytes(rem / 2), maskBytes(min(rem, 64)), maskBytes(rem - 64)
}

func asInt32(out []float32) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(&out[0])), len(out))
}

func i8Strips(isa ISA, dots *int32, w *int8, stride int, x *int8, cols, n int) {
	switch isa {
	case AVX512:
		m0, m1 := i8Masks(cols)
		gemvI8AVX512(dots, w, stride, x, cols, n, m0, m1)
	case AVXVNNI:
		gemvI8AVXVNNI(dots, w, stride, x, cols, n)
	default:
		gemvI8AVX2(dots, w, stride, x, cols, n)
	}
}

// a4Strips runs the A8W4 GEMV kernel of isa over n strips of 4 rows. xp is x prepared
// by prepA8W4XAVX512 (AVX512 only; the VEX kernels read x itself).
func a4Strips(isa ISA, dots *int32, codes *byte, cstride int, tables *int8, tstride int, x *int8, xp *byte, cols, n int) {
	switch isa {
	case AVX512:
		kc, _, _ := a4Masks(cols)
		gemvA8W4PAVX512(dots, codes, cstride, tables, tstride, xp, cols, n, kc)
	case AVXVNNI:
		gemvA8W4AVXVNNI(dots, codes, cstride, tables, tstride, x, cols, n)
	default:
		gemvA8W4AVX2(dots, codes, cstride, tables, tstride, x, cols, n)
	}
}

func asmISA() bool {
	switch active {
	case AVX512, AVXVNNI, AVX2:
		return true
	}
	return false
}

func gemvI8(out []float32, w []int8, wScale []float32, rowSum []int32, x []int8, xScale float32) {
	rows, cols := len(out), len(x)
	if !asmISA() || cols == 0 {
		gemvI8Generic(out, w, wScale, rowSum, x, xScale)
		return
	}
	isa := active
	dots := asInt32(out)
	if rows >= 4 {
		i8Strips(isa, &dots[0], &w[0], cols, &x[0], cols, rows/4)
		if rows%4 != 0 {
			i8Strips(isa, &dots[rows-4], &w[(rows-4)*cols], cols, &x[0], cols, 1)
		}
	} else {
		var tmp [4]int32
		for r := 0; r < rows; r++ {
			i8Strips(isa, &tmp[0], &w[r*cols], 0, &x[0], cols, 1)
			dots[r] = tmp[0]
		}
	}
	i8Epilogue(out, dots, wScale, rowSum, xScale)
}

// i8Epilogue sets out[r] = scale[r] * xScale * float32(dots[r] - 128*rowSum[r]) (out and
// dots may be the same memory). The AVX-512 kernel does the same operations in the same
// order, so every path gives the same bits.
func i8Epilogue(out []float32, dots []int32, scale []float32, rowSum []int32, xScale float32) {
	scale, rowSum, dots = scale[:len(out)], rowSum[:len(out)], dots[:len(out)]
	if active == AVX512 && len(out) > 0 {
		i8EpilogueAVX512(&out[0], &dots[0], &scale[0], &rowSum[0], xScale, len(out))
		return
	}
	for r := range out {
		out[r] = scale[r] * xScale * float32(dots[r]-rowSum[r]<<7)
	}
}

// gemmEpilogue runs i8Epilogue per token on the token-major raw sums of a GEMM of rows
// rows (out and dots are the same memory).
func gemmEpilogue(out []float32, dots []int32, rows int, scale []float32, rowSum []int32, xScale []float32) {
	for t, xs := range xScale {
		i8Epilogue(out[t*rows:(t+1)*rows], dots[t*rows:(t+1)*rows], scale, rowSum, xs)
	}
}

func gemvA8W4(out []float32, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	if !asmISA() || len(x) == 0 {
		gemvA8W4Generic(out, codes, tables, s1, rowSum, x, xScale)
		return
	}
	dots := asInt32(out)
	// The AVX-512 kernel reads x prepared once per call (x+128, in the order of its
	// table lookups), which lets it walk the rows one at a time (see asm/int8 gemvA8W4P).
	bp, xp := prepA8W4Once(x)
	a4Dots(active, dots, codes, tables, x, xp)
	if bp != nil {
		xPrep.Put(bp)
	}
	i8Epilogue(out, dots, s1, rowSum, xScale)
}

// prepA8W4Once prepares x for the AVX-512 A8W4 GEMVs into a pooled buffer (nil, nil on
// the other ISAs); the caller puts bp back.
func prepA8W4Once(x []int8) (bp *[]byte, xp *byte) {
	if active != AVX512 {
		return nil, nil
	}
	cols := len(x)
	pc := a8w4Groups(cols) * 128
	bp = xPrep.Get()
	if cap(*bp) < pc {
		*bp = make([]byte, pc)
	}
	_, kx0, kx1 := a4Masks(cols)
	xp = &(*bp)[:pc][0]
	prepA8W4XAVX512(xp, pc, &x[0], cols, cols, 1, kx0, kx1)
	return bp, xp
}

// a4Dots writes the raw sums of the table kernel of isa for len(dots) rows.
func a4Dots(isa ISA, dots []int32, codes []byte, tables []int8, x []int8, xp *byte) {
	rows, cols := len(dots), len(x)
	cb, tb := cols/2, a8w4Groups(cols)*16
	if rows >= 4 {
		a4Strips(isa, &dots[0], &codes[0], cb, &tables[0], tb, &x[0], xp, cols, rows/4)
		if rows%4 != 0 {
			r := rows - 4
			a4Strips(isa, &dots[r], &codes[r*cb], cb, &tables[r*tb], tb, &x[0], xp, cols, 1)
		}
	} else {
		var tmp [4]int32
		for r := 0; r < rows; r++ {
			a4Strips(isa, &tmp[0], &codes[r*cb], 0, &tables[r*tb], 0, &x[0], xp, cols, 1)
			dots[r] = tmp[0]
		}
	}
}

func gemvA8W4G(out []float32, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale float32) {
	cols := len(x)
	if !asmISA() || cols == 0 {
		gemvA8W4GGeneric(out, codes, groups, s1, rowSum, x, xScale)
		return
	}
	dots := asInt32(out)
	if active != AVX512 {
		a4GByTables(active, dots, 1, codes, groups, x, nil)
		i8Epilogue(out, dots, s1, rowSum, xScale)
		return
	}
	bp, xp := prepA8W4Once(x)
	a4GDots(dots, codes, groups, xp, cols)
	xPrep.Put(bp)
	i8Epilogue(out, dots, s1, rowSum, xScale)
}

// a4GDots runs gemvA8W4GAVX512 over len(dots) rows (overlapping last strip; rows < 4 one
// at a time with stride 0).
func a4GDots(dots []int32, codes []byte, groups []byte, xp *byte, cols int) {
	rows := len(dots)
	cb, gb := cols/2, a8w4Groups(cols)*2
	kc, _, _ := a4Masks(cols)
	lut := &a8w4LUT[0]
	if rows >= 4 {
		gemvA8W4GAVX512(&dots[0], &codes[0], cb, &groups[0], gb, lut, xp, cols, rows/4, kc)
		if rows%4 != 0 {
			r := rows - 4
			gemvA8W4GAVX512(&dots[r], &codes[r*cb], cb, &groups[r*gb], gb, lut, xp, cols, 1, kc)
		}
		return
	}
	var tmp [4]int32
	for r := 0; r < rows; r++ {
		gemvA8W4GAVX512(&tmp[0], &codes[r*cb], 0, &groups[r*gb], 0, lut, xp, cols, 1, kc)
		dots[r] = tmp[0]
	}
}

// a4GByTables is the table-free A8W4 product of the VEX ISAs (AVX-VNNI, AVX2), whose
// kernels read a table per row: the tables of a few rows at a time are expanded from the pairs
// into a small buffer that stays in L1 (a8w4TableBuf), and the table kernel multiplies
// those rows with each of the ntok tokens of x (len(dots)/ntok rows each; dots token-major).
func a4GByTables(isa ISA, dots []int32, ntok int, codes []byte, groups []byte, x []int8, xp *byte) {
	rows := len(dots) / ntok
	cols := len(x) / ntok
	cb, gb, tb := cols/2, a8w4Groups(cols)*2, a8w4Groups(cols)*16
	buf := a8w4Tables.Get()
	chunk := a8w4ChunkRows(rows, tb)
	if cap(*buf) < chunk*tb {
		*buf = make([]int8, chunk*tb)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		r1 := min(rows, r0+chunk)
		if r1-r0 < 4 && rows >= 4 {
			r0 = r1 - 4 // overlapping last chunk: the strips need 4 rows
		}
		t := (*buf)[:(r1-r0)*tb]
		A8W4Tables(t, groups[r0*gb:r1*gb])
		for k := 0; k < ntok; k++ {
			a4Dots(isa, dots[k*rows+r0:k*rows+r1], codes[r0*cb:r1*cb], t, x[k*cols:(k+1)*cols], xp)
		}
	}
	a8w4Tables.Put(buf)
}

func rowSumsA8W4G(rowSum []int32, codes []byte, groups []byte, cols int) {
	if active != AVX512 {
		rowSumsA8W4GGeneric(rowSum, codes, groups, cols)
		return
	}
	// The raw sums of the kernel are sum_k (x[k]+128)*table(r, k): with prepared bytes 1
	// (x = -127) they are the row sums themselves.
	pc := a8w4Groups(cols) * 128
	bp := xPrep.Get()
	if cap(*bp) < pc {
		*bp = make([]byte, pc)
	}
	xp := (*bp)[:pc]
	for i := range xp {
		xp[i] = 1
	}
	a4GDots(rowSum, codes, groups, &xp[0], cols)
	xPrep.Put(bp)
}

// gemmTokenBlock tokens share one pass of the AVX-512 GEMMs over the row strips: their
// prepared activations stay in L2 while a strip of weights sits in L1. The block is at
// most gemmTokenBlockMax tokens and at most gemmBlockBytes of prepared rows (ps bytes
// each), a multiple of gemmI8Toks. 128 tokens of 4096 columns (520 KiB) measured 3-6%
// faster than 64 on the development VM (2 MiB L2) for both GEMMs (512 x 4096 x 4096,
// thread CPU time); the byte bound keeps wide rows (FFN down projections) in L2 too.
// The VEX GEMMs (int8_vex_amd64.go) use the same bounds.
const gemmTokenBlockMax = 128

// gemmBlockBytes is the 544 KiB measured on the 2 MiB L2 of the development VM, but at
// most half the L2 cpuid reports, so that on CPUs with a small L2 (256 KiB on many AVX2
// desktops, 512 KiB on Zen 2/3) the block still stays in it; this bound is the usual
// rule of blocked GEMMs, not measured here (no such CPU at hand).
var gemmBlockBytes = blockBytesForL2(cpuid.CPU.Cache.L2)

func blockBytesForL2(l2 int) int {
	const tuned = 544 << 10
	if l2 <= 0 {
		return tuned
	}
	return min(tuned, max(64<<10, l2/2))
}

func gemmTokenBlock(ps int) int {
	return max(gemmI8Toks, min(gemmTokenBlockMax, gemmBlockBytes/ps)&^(gemmI8Toks-1))
}

// gemmI8Rows x gemmI8Toks is the register block of gemmI8PStripAVX512 (asm/int8 gemmI8P).
const (
	gemmI8Rows = 6
	gemmI8Toks = 4
)

func gemmI8(out []float32, rows int, w []int8, wScale []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	cols := len(x) / ntok
	const R, T = gemmI8Rows, gemmI8Toks
	if vexGemmOK(rows, ntok, cols) {
		dots := asInt32(out)
		gemmStripsVEX(active, dots, rows, ntok, cols, x, w, nil)
		gemmEpilogue(out, dots, rows, wScale, rowSum, xScale)
		return
	}
	if active != AVX512 || rows < R || ntok < T || cols == 0 {
		for t, xs := range xScale {
			gemvI8(out[t*rows:(t+1)*rows], w, wScale, rowSum, x[t*cols:(t+1)*cols], xs)
		}
		return
	}
	dots := asInt32(out)
	var m0 uint64
	if cols%64 != 0 {
		m0 = maskBytes(32)
	}
	// Read in place, the six rows of a strip sit cols bytes apart and alias in L1 when
	// cols is a multiple of 4096 (the kernel ran at 46% of the VPDPBUSD peak, against 76%
	// for A8W4, whose strips are unpacked into a padded buffer anyway): each strip is
	// copied into the padded buffer once per token block, by the first tile of tokens
	// that multiplies it (gemmI8CStripAVX512).
	gemmStripsAVX512(dots, rows, ntok, cols, (cols+63)&^63, m0,
		func(xp []byte, ps, t0, n int) { prepI8XAVX512(&xp[0], ps, &x[t0*cols], cols, cols, n) },
		nil, w)
	gemmEpilogue(out, dots, rows, wScale, rowSum, xScale)
}

// xPrep holds prepared activations: one token block of the AVX-512 GEMMs (gemmTokenBlock
// tokens, padded), or the one token of the AVX-512 A8W4 GEMV; for the blocked GGML GEMMs
// (ggml_amd64.go) also their prepared weights (64-byte aligned there). Taken per call, so
// concurrent calls (the engine's pool) each get their own without allocating in steady
// state.
var xPrep = newScratchPool[byte](64)

// gemmA8W4 on AVX-512 turns the 4-bit weights into int8 one strip of gemmI8Rows rows at a
// time (unpackA8W4AVX512, into a buffer that stays in L1) and multiplies each strip with a
// token block of prepared activations by the int8 kernel (gemmI8PStripAVX512). The table
// lookups are then done once per strip and token block instead of once per 4 tokens, and
// the multiplies run at the int8 kernel's speed; the sums are the same integers.
func gemmA8W4(out []float32, rows int, codes []byte, tables []int8, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	cols := len(x) / ntok
	const R, T = gemmI8Rows, gemmI8Toks
	if vexGemmOK(rows, ntok, cols) {
		dots := asInt32(out)
		vr, _ := vexTile(active)
		cb, tb := cols/2, a8w4Groups(cols)*16
		gemmStripsVEX(active, dots, rows, ntok, cols, x, nil, func(w8 []int8, ps8, r0 int) {
			unpackA8W4AVX2(&w8[0], ps8, &codes[r0*cb], cb, &tables[r0*tb], tb, cols, vr)
		})
		gemmEpilogue(out, dots, rows, s1, rowSum, xScale)
		return
	}
	if active != AVX512 || rows < R || ntok < T || cols == 0 {
		for t, xs := range xScale {
			gemvA8W4(out[t*rows:(t+1)*rows], codes, tables, s1, rowSum, x[t*cols:(t+1)*cols], xs)
		}
		return
	}
	dots := asInt32(out)
	kc, _, _ := a4Masks(cols)
	cb, tb := cols/2, a8w4Groups(cols)*16
	gemmA8W4StripsAVX512(dots, rows, ntok, x, func(wu []int8, ps, r0 int) {
		unpackA8W4AVX512(&wu[0], ps, &codes[r0*cb], cb, &tables[r0*tb], tb, cols, gemmI8Rows, kc, gemmI8Rows*cb, gemmI8Rows*tb)
	})
	gemmEpilogue(out, dots, rows, s1, rowSum, xScale)
}

// gemmA8W4G is gemmA8W4 on the stored pairs: the AVX-512 strips are unpacked by
// unpackA8W4G (tables from the LUT); the other ISAs expand the tables of a few rows
// at a time (a4GByTables) and run the table GEMV per token on them.
func gemmA8W4G(out []float32, rows int, codes []byte, groups []byte, s1 []float32, rowSum []int32, x []int8, xScale []float32) {
	ntok := len(xScale)
	cols := len(x) / ntok
	const R, T = gemmI8Rows, gemmI8Toks
	if !asmISA() || cols == 0 {
		gemmA8W4GGeneric(out, rows, codes, groups, s1, rowSum, x, xScale)
		return
	}
	dots := asInt32(out)
	switch {
	case vexGemmOK(rows, ntok, cols):
		gemmA8W4GVEX(dots, rows, ntok, codes, groups, x)
	case active != AVX512:
		a4GByTables(active, dots, ntok, codes, groups, x, nil)
	case rows < R || ntok < T:
		for t := range xScale {
			gemvA8W4G(out[t*rows:(t+1)*rows], codes, groups, s1, rowSum, x[t*cols:(t+1)*cols], xScale[t])
		}
		return
	default:
		gemmA8W4GDots(dots, rows, codes, groups, x, ntok)
	}
	gemmEpilogue(out, dots, rows, s1, rowSum, xScale)
}

// gemmA8W4GDots is the AVX-512 body of gemmA8W4 with unpackA8W4GAVX512 (rows >= R,
// ntok >= T): raw sums into dots, token-major.
func gemmA8W4GDots(dots []int32, rows int, codes []byte, groups []byte, x []int8, ntok int) {
	cols := len(x) / ntok
	kc, _, _ := a4Masks(cols)
	cb, gb := cols/2, a8w4Groups(cols)*2
	gemmA8W4StripsAVX512(dots, rows, ntok, x, func(wu []int8, ps, r0 int) {
		unpackA8W4GAVX512(&wu[0], ps, &codes[r0*cb], cb, &groups[r0*gb], gb, &a8w4LUT[0], cols, gemmI8Rows, kc, gemmI8Rows*cb, gemmI8Rows*gb)
	})
}

// gemmA8W4StripsAVX512 is gemmStripsAVX512 for the A8W4 GEMMs: x ([ntok][cols]) prepared
// by prepA8W4XAVX512 and strips written by unpack, rows of whole groups (padding codes
// zero) over all of them, no tail mask.
func gemmA8W4StripsAVX512(dots []int32, rows, ntok int, x []int8, unpack func(wu []int8, ps, r0 int)) {
	cols := len(x) / ntok
	_, kx0, kx1 := a4Masks(cols)
	pc := a8w4Groups(cols) * 128
	gemmStripsAVX512(dots, rows, ntok, pc, pc, 0,
		func(xp []byte, ps, t0, n int) { prepA8W4XAVX512(&xp[0], ps, &x[t0*cols], cols, cols, n, kx0, kx1) },
		unpack, nil)
}

// gemmStripsAVX512 is the loop the AVX-512 int8 and A8W4 GEMMs share (rows >= gemmI8Rows,
// ntok >= gemmI8Toks): per token block, prep prepares n tokens from t0 into rows ps bytes
// apart; per strip of gemmI8Rows rows from r0 (the last one overlapping), the strip is
// written as int8 rows ps apart into a buffer, then gemmI8PStripAVX512 multiplies the
// strip by the block in tiles of gemmI8Toks tokens (the last one overlapping) over kcols
// columns (m0 masks a 32-column tail). The strip is written either by fill (A8W4: the
// unpacked weights), or, when fill is nil, copied from the int8 matrix w (kcols bytes a
// row) by the first tile, gemmI8CStripAVX512, which multiplies as it copies. Rows of
// both are pc bytes (kcols rounded up to whole vectors) plus one vector, so that the
// rows a tile reads side by side do not fall into one L1 set when cols is a multiple of
// 4096. Raw sums go to dots, token-major.
func gemmStripsAVX512(dots []int32, rows, ntok, kcols, pc int, m0 uint64, prep func(xp []byte, ps, t0, n int), fill func(wu []int8, ps, r0 int), w []int8) {
	const R, T = gemmI8Rows, gemmI8Toks
	ps := pc + 64
	block := gemmTokenBlock(ps)
	bp := xPrep.Get()
	if need := (min(block, ntok)+R)*ps + 4096; cap(*bp) < need {
		*bp = make([]byte, need)
	}
	buf := (*bp)[:cap(*bp)]
	off := 0
	if fill == nil {
		// Place the copy 2 KiB away from its source modulo 4 KiB: the first tile stores a
		// strip row while it loads the next vector of the rows above, and a load whose
		// address matches an earlier store's in the low 12 bits waits for it (4K
		// aliasing). Measured +1-3% of the VPDPBUSD peak on the development VM.
		off = int(uintptr(unsafe.Pointer(&w[0]))+2048-uintptr(unsafe.Pointer(&buf[0]))) & 4095
	}
	wu := unsafe.Slice((*int8)(unsafe.Pointer(&buf[off])), R*ps)
	xp := buf[off+R*ps:]
	strip := func(r0, t0, xo, ntiles int) {
		gemmI8PStripAVX512(&dots[t0*rows+r0], rows, &wu[0], ps, &xp[xo], ps, kcols, 1, ntiles, m0)
	}
	for t0 := 0; t0 < ntok; t0 += block {
		nt := min(block, ntok-t0)
		// tokens [t0, t0+nt/T*T) in whole tiles, then an overlapping tile of the last T
		// tokens (ntok >= T) when nt is not a multiple of T
		tl, xl := t0+nt-T, max(nt-T, 0)*ps
		if nt < T {
			prep(xp, ps, tl, T)
		} else {
			prep(xp, ps, t0, nt)
		}
		for r0 := 0; r0 < rows; r0 += R {
			r0 = min(r0, rows-R) // overlapping last strip (rows >= R)
			if fill == nil {
				ct0, ctiles := t0, nt/T
				if nt < T {
					ct0, ctiles = tl, 1
				}
				copyStripI8(&dots[ct0*rows+r0], rows, &w[r0*kcols], kcols, &wu[0], ps, &xp[0], ps, kcols, ctiles, m0)
				if nt > T && nt%T != 0 {
					strip(r0, tl, xl, 1)
				}
				continue
			}
			fill(wu, ps, r0)
			if nt >= T {
				strip(r0, t0, 0, nt/T)
			}
			if nt%T != 0 {
				strip(r0, tl, xl, 1)
			}
		}
	}
	xPrep.Put(bp)
}

// copyStripI8 calls gemmI8CStripAVX512 (same arguments) from a Go function that is not
// inlined and calls another, so it has a stack check: a preemption point once per strip
// (~10 µs), which the loop of gemmStripsAVX512 would otherwise lack (assembly cannot be
// preempted, and a loop of calls into it has no safe point of its own), so a GEMM of
// any size keeps GC pauses short. The A8W4 GEMMs get the same from their fill calls.
//
//go:noinline
func copyStripI8(dots *int32, dstride int, w *int8, wstride int, wu *int8, ustride int, x *byte, xstride int, cols int, ntiles int, m0 uint64) {
	gemmI8CStripAVX512(dots, dstride, w, wstride, wu, ustride, x, xstride, cols, ntiles, m0)
}

// quantizeI8 runs the generic quantiser's two passes with SIMD over whole blocks of 4
// vectors (asm/int8 quantI8) and the same Go code over the rest, so the bits are the
// generic twin's: the absolute maximum does not depend on the order, and each value is
// quantised on its own.
func quantizeI8(dst []int8, x []float32) float32 {
	var blk int
	switch active {
	case AVX512:
		blk = 64
	case AVXVNNI, AVX2:
		blk = 32
	default:
		return quantizeI8Generic(dst, x)
	}
	n := len(x)
	nb := n &^ (blk - 1)
	var amax float32
	if nb > 0 {
		if blk == 64 {
			amax = quantAbsMaxAVX512(&x[0], nb)
		} else {
			amax = quantAbsMaxAVX2(&x[0], nb)
		}
	}
	for _, v := range x[nb:] {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax = a
		}
	}
	if amax == 0 {
		clear(dst[:n])
		return 0
	}
	inv := 127 / amax
	if nb > 0 {
		if blk == 64 {
			quantI8AVX512(&dst[0], &x[0], nb, inv)
		} else {
			quantI8AVX2(&dst[0], &x[0], nb, inv)
		}
	}
	quantizeI8Values(dst[nb:n], x[nb:], inv)
	return amax / 127
}

//go:noescape
func streamReadAVX2(p *byte, n int) uint64

// VPDPBUSD_VEX_Y checks (vexmacros_amd64.h): acc += u8(u) . s8(s) per dword.

//go:noescape
func vexDpbusd0(acc *[8]int32, u, s *[32]byte)

//go:noescape
func vexDpbusd1(acc *[8]int32, u, s *[32]byte)

//go:noescape
func vexDpbusd2(acc *[8]int32, u, s *[32]byte)

//go:noescape
func vexDpbusd3(acc *[8]int32, u, s *[32]byte)
