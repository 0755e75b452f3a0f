//go:build !purego

package kernels

import "unsafe"

// Blocked GEMMs of the VEX paths (kernels in int8_gemm_vex_amd64.s): the loop of the
// AVX-512 GEMMs (gemmStripsAVX512) on ymm registers, for GemmI8, GemmA8W4 and GemmA8W4G.
// AVX-VNNI multiplies int8 with a 3-row x 4-token register tile; AVX2 multiplies int16
// (VPMADDWD, exact where VPMADDUBSW saturates) with a 3 x 3 tile. Before these, both paths
// ran a GEMV per token, re-reading the weights for every token (7-10% of the peak).

//go:noescape
func prepI8XAVX2(dst *byte, dstride int, x *int8, xstride int, cols int, ntok int)

//go:noescape
func gemmI8StripAVXVNNI(dots *int32, dstride int, w *int8, wstride int, x *byte, xstride int, cols int, ntiles int)

// gemmVEXRows x gemmVEXToks is the register tile of gemmI8StripAVXVNNI.
const (
	gemmVEXRows = 3
	gemmVEXToks = 4
)

//go:noescape
func prepI16XAVX2(dst *byte, dstride int, x *int8, xstride int, cols int, ntok int)

//go:noescape
func widenI8AVX2(dst *byte, dstride int, w *int8, wstride int, cols int, nrows int)

//go:noescape
func unpackA8W4AVX2(dst *int8, dstride int, codes *byte, cstride int, tables *int8, tstride int, cols int, nrows int)

//go:noescape
func gemmI16StripAVX2(dots *int32, dstride int, w *byte, wstride int, x *byte, xstride int, cols int, ntiles int)

// gemmAVX2Rows x gemmAVX2Toks is the register tile of gemmI16StripAVX2.
const (
	gemmAVX2Rows = 3
	gemmAVX2Toks = 3
)

// stripVEX calls the strip kernel of isa (gemmI8StripAVXVNNI on the int8 strip w,
// gemmI16StripAVX2 on the widened one) from a Go function with a stack check: a safe
// point per strip and token block (see copyStripI8).
//
//go:noinline
func stripVEX(isa ISA, dots *int32, dstride int, w *byte, wstride int, x *byte, xstride int, cols int, ntiles int) {
	if isa == AVXVNNI {
		gemmI8StripAVXVNNI(dots, dstride, (*int8)(unsafe.Pointer(w)), wstride, x, xstride, cols, ntiles)
		return
	}
	gemmI16StripAVX2(dots, dstride, w, wstride, x, xstride, cols, ntiles)
}

// vexTile is the register tile (rows x tokens) of the blocked GEMM of isa (AVXVNNI or
// AVX2).
func vexTile(isa ISA) (rows, toks int) {
	if isa == AVXVNNI {
		return gemmVEXRows, gemmVEXToks
	}
	return gemmAVX2Rows, gemmAVX2Toks
}

// gemmStripsVEX is the blocked GEMM of the VEX paths (isa AVXVNNI or AVX2; rows and ntok
// at least vexTile's), the loop of the AVX-512 one (gemmStripsAVX512): raw sums of
// (x+128)*w into dots, token-major. Per token block, the block is prepared once (x+128;
// widened to int16 on AVX2) into rows padded by 64 bytes; per strip of R rows (the last
// one overlapping), the strip's int8 weights are written by fill into rows ps8 = cols+64
// bytes apart (fill nil: copied from the int8 matrix w, cols bytes a row), then
// multiplied by the block in tiles of T tokens (the last one overlapping). On AVX-VNNI the
// kernel reads the int8 strip; on AVX2 it is widened to int16 first (gemmI16StripAVX2),
// straight from w when fill is nil. The padding keeps rows that are a multiple of 4 KiB
// long from aliasing in L1.
func gemmStripsVEX(isa ISA, dots []int32, rows, ntok, cols int, x []int8, w []int8, fill func(w8 []int8, ps8, r0 int)) {
	R, T := vexTile(isa)
	ps8 := cols + 64
	ps := ps8 // bytes per prepared row (token or weight row) the kernel reads
	if isa == AVX2 {
		ps = 2*cols + 64
	}
	block := max(T, min(gemmTokenBlockMax, gemmBlockBytes/ps)/T*T)
	need := (min(block, ntok)+R)*ps + R*ps8
	bp := xPrep.Get()
	if cap(*bp) < need {
		*bp = make([]byte, need)
	}
	buf := (*bp)[:cap(*bp)]
	wu := buf[:R*ps]                                               // the strip the kernel reads
	w8 := unsafe.Slice((*int8)(unsafe.Pointer(&buf[R*ps])), R*ps8) // AVX2: the int8 strip
	xp := buf[R*ps+R*ps8:]                                         // the prepared block
	wu8 := unsafe.Slice((*int8)(unsafe.Pointer(&wu[0])), len(wu))  // AVX-VNNI: wu as int8
	strip := func(r0, t, xo, ntiles int) {
		stripVEX(isa, &dots[t*rows+r0], rows, &wu[0], ps, &xp[xo], ps, cols, ntiles)
	}
	for t0 := 0; t0 < ntok; t0 += block {
		nt := min(block, ntok-t0)
		tl, xl := t0+nt-T, max(nt-T, 0)*ps
		p0, pn := t0, nt
		if nt < T {
			p0, pn = tl, T
		}
		if isa == AVXVNNI {
			prepI8XAVX2(&xp[0], ps, &x[p0*cols], cols, cols, pn)
		} else {
			prepI16XAVX2(&xp[0], ps, &x[p0*cols], cols, cols, pn)
		}
		for r0 := 0; r0 < rows; r0 += R {
			r0 = min(r0, rows-R)
			switch {
			case fill == nil && isa == AVX2:
				widenI8AVX2(&wu[0], ps, &w[r0*cols], cols, cols, R)
			case fill == nil:
				for i := range R {
					copy(wu8[i*ps:i*ps+cols], w[(r0+i)*cols:(r0+i+1)*cols])
				}
			case isa == AVX2:
				fill(w8, ps8, r0)
				widenI8AVX2(&wu[0], ps, &w8[0], ps8, cols, R)
			default:
				fill(wu8, ps8, r0)
			}
			if nt < T {
				strip(r0, tl, 0, 1)
				continue
			}
			strip(r0, t0, 0, nt/T)
			if nt%T != 0 {
				strip(r0, tl, xl, 1)
			}
		}
	}
	xPrep.Put(bp)
}

// vexGemmOK reports whether the blocked VEX GEMM handles a product of rows x ntok on the
// active path.
func vexGemmOK(rows, ntok, cols int) bool {
	if active != AVXVNNI && active != AVX2 || cols == 0 {
		return false
	}
	R, T := vexTile(active)
	return rows >= R && ntok >= T
}

// gemmA8W4GVEX is the blocked VEX GEMM on the stored (z, S2) pairs: per strip, the tables
// of its rows are expanded from the pairs (A8W4Tables: LUT copies) into a small buffer,
// then unpacked with the codes into int8 rows.
func gemmA8W4GVEX(dots []int32, rows, ntok int, codes []byte, groups []byte, x []int8) {
	cols := len(x) / ntok
	R, _ := vexTile(active)
	cb, gb, tb := cols/2, a8w4Groups(cols)*2, a8w4Groups(cols)*16
	tp := a8w4Tables.Get()
	if cap(*tp) < R*tb {
		*tp = make([]int8, R*tb)
	}
	t := (*tp)[:R*tb]
	gemmStripsVEX(active, dots, rows, ntok, cols, x, nil, func(w8 []int8, ps8, r0 int) {
		A8W4Tables(t, groups[r0*gb:(r0+R)*gb])
		unpackA8W4AVX2(&w8[0], ps8, &codes[r0*cb], cb, &t[0], tb, cols, R)
	})
	a8w4Tables.Put(tp)
}
