//go:build !purego

package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestGemmI8CStrip checks gemmI8CStripAVX512 on its own: the raw sums of 6 rows by
// 4*ntiles prepared tokens against int64 sums, the copy of the rows (zero beyond cols in
// the padded row's last vector), and that it neither reads nor writes beyond them.
func TestGemmI8CStrip(t *testing.T) {
	if !Supported(AVX512) {
		t.Skip("no AVX-512 VNNI")
	}
	const R, T = gemmI8Rows, gemmI8Toks
	r := rand.New(rand.NewPCG(13, 13))
	for _, cols := range []int{32, 64, 96, 4096, 4096 + 32} {
		for _, ntiles := range []int{1, 2, 3} {
			ntok := T * ntiles
			ps := (cols+63)&^63 + 64
			w := make([]int8, R*cols)
			for i := range w {
				w[i] = int8(r.IntN(256) - 128)
			}
			x := make([]int8, ntok*cols)
			for i := range x {
				x[i] = int8(r.IntN(256) - 128)
			}
			xp := make([]byte, ntok*ps)
			prepI8XAVX512(&xp[0], ps, &x[0], cols, cols, ntok)
			wu := make([]int8, R*ps)
			for i := range wu {
				wu[i] = 0x55 // the kernel writes every byte up to the padded width
			}
			const dstride = R + 3
			dots := make([]int32, ntok*dstride)
			var m0 uint64
			if cols%64 != 0 {
				m0 = maskBytes(32)
			}
			gemmI8CStripAVX512(&dots[0], dstride, &w[0], cols, &wu[0], ps, &xp[0], ps, cols, ntiles, m0)
			for tk := 0; tk < ntok; tk++ {
				for row := 0; row < dstride; row++ {
					got := dots[tk*dstride+row]
					if row >= R {
						if got != 0 {
							t.Fatalf("cols %d ntiles %d: wrote dots[%d*%d+%d]", cols, ntiles, tk, dstride, row)
						}
						continue
					}
					var s int64
					for k := 0; k < cols; k++ {
						s += int64(int(x[tk*cols+k])+128) * int64(w[row*cols+k])
					}
					if int64(got) != s {
						t.Fatalf("cols %d ntiles %d token %d row %d: %d, want %d", cols, ntiles, tk, row, got, s)
					}
				}
			}
			for row := 0; row < R; row++ {
				for k := 0; k < ps; k++ {
					want := int8(0x55)
					switch {
					case k < cols:
						want = w[row*cols+k]
					case k < (cols+63)&^63:
						want = 0
					}
					if wu[row*ps+k] != want {
						t.Fatalf("cols %d: copy row %d byte %d = %d, want %d", cols, row, k, wu[row*ps+k], want)
					}
				}
			}
		}
	}
}

// TestGemmI8NoAlloc: the blocked GEMMs of every amd64 path take their buffers from a pool.
func TestGemmI8NoAlloc(t *testing.T) {
	const rows, cols, ntok = 13, 256, 9
	m := newBenchMat(rows, cols, true, false)
	x := make([]int8, ntok*cols)
	xs := make([]float32, ntok)
	for i := range xs {
		xs[i] = 0.5
	}
	out := make([]float32, rows*ntok)
	prev := Active()
	defer SetISA(prev)
	for _, isa := range []ISA{AVX512, AVXVNNI, AVX2} {
		if _, err := SetISA(isa); err != nil {
			continue
		}
		GemmI8(out, rows, m.w, m.scale, m.rowSum, x, xs)
		if n := testing.AllocsPerRun(50, func() { GemmI8(out, rows, m.w, m.scale, m.rowSum, x, xs) }); n != 0 {
			t.Errorf("%s: GemmI8 allocates %v times per call", isa, n)
		}
	}
}

// TestGemmSmallL2: the block bound follows the L2 size, and with the bound of a 128 KiB
// L2 (many short token blocks, wide rows) every path still gives the generic twin's bits.
func TestGemmSmallL2(t *testing.T) {
	for _, c := range []struct{ l2, want int }{{-1, 544 << 10}, {2 << 20, 544 << 10}, {512 << 10, 256 << 10}, {256 << 10, 128 << 10}, {32 << 10, 64 << 10}} {
		if got := blockBytesForL2(c.l2); got != c.want {
			t.Errorf("blockBytesForL2(%d) = %d, want %d", c.l2, got, c.want)
		}
	}
	saved := gemmBlockBytes
	defer func() { gemmBlockBytes = saved }()
	gemmBlockBytes = blockBytesForL2(128 << 10)
	const rows, cols, ntok = 8, 4096 + 32, 41
	r := rand.New(rand.NewPCG(15, 15))
	c := newI8Case(r, rows, cols, ntok, 0)
	rs := c.sumsI8()
	want := make([]float32, rows*ntok)
	gemmI8Generic(want, rows, c.w, c.wScale, rs, c.x, c.xScale)
	allISAs(t, func(t *testing.T) {
		got := make([]float32, rows*ntok)
		GemmI8(got, rows, c.w, c.wScale, rs, c.x, c.xScale)
		bitsEqual(t, "GemmI8", got, want)
	})
}
