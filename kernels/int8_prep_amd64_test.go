//go:build !purego

package kernels

import (
	"slices"
	"testing"
)

// TestUnpackA8W4 checks the AVX-512 A8W4 GEMM's weight unpacking against the layout it
// must match: with prepared activations that are 0 everywhere but 1 in column k, the dot
// product of an unpacked row with them (sum of 128*w' over the row plus w' at column k's
// position) must give table(r, k); the bytes beyond cols must be 0.
func TestUnpackA8W4(t *testing.T) {
	if !Supported(AVX512) {
		t.Skip("no AVX-512 VNNI")
	}
	for _, cols := range []int{32, 96, 128, 160, 256 + 64 + 32} {
		const rows = 3
		m := newBenchMat(rows, cols, false, true)
		cb, tb := cols/2, a8w4Groups(cols)*16
		kc, kx0, kx1 := a4Masks(cols)
		pc := a8w4Groups(cols) * 128
		ps := pc + 64
		wu := make([]int8, rows*ps)
		unpackA8W4AVX512(&wu[0], ps, &m.codes[0], cb, &m.tables[0], tb, cols, rows, kc, 0, 0)
		xp := make([]byte, pc)
		x := make([]int8, cols)
		for k := 0; k < cols; k++ {
			clear(x)
			x[k] = 1
			prepA8W4XAVX512(&xp[0], pc, &x[0], cols, cols, 1, kx0, kx1)
			for r := 0; r < rows; r++ {
				var sum, all int32
				for i, v := range wu[r*ps : r*ps+pc] {
					sum += int32(v) * int32(xp[i])
					all += int32(v)
				}
				g := k / 128
				kk := k % 128
				// code of column k: 32-code blocks of 16 bytes, byte j holds codes j and j+16
				b := m.codes[r*cb+g*64+kk/32*16+kk%16]
				code := b & 15
				if kk%32 >= 16 {
					code = b >> 4
				}
				want := int32(m.tables[r*tb+g*16+int(code)])
				if got := sum - 128*all; got != want {
					t.Fatalf("cols %d row %d col %d: unpacked weight %d, table gives %d", cols, r, k, got, want)
				}
			}
		}
		// x = -128 everywhere: prepared bytes are 0 in the columns and 0x80 in the padding,
		// so the dot product is 128 * the sum of the padding bytes, which unpacking must
		// have overwritten (they start as 0x55 below) with zeros.
		for i := range x {
			x[i] = -128
		}
		prepA8W4XAVX512(&xp[0], pc, &x[0], cols, cols, 1, kx0, kx1)
		for i := range wu {
			wu[i] = 0x55
		}
		unpackA8W4AVX512(&wu[0], ps, &m.codes[0], cb, &m.tables[0], tb, cols, rows, kc, 0, 0)
		for r := 0; r < rows; r++ {
			var sum int32
			for i, v := range wu[r*ps : r*ps+pc] {
				sum += int32(v) * int32(xp[i])
			}
			if sum != 0 {
				t.Fatalf("cols %d row %d: padding of the unpacked row is not zero (dot %d)", cols, r, sum)
			}
		}
	}
}

// TestGemmA8W4NoAlloc: the prepared-activation buffer comes from a pool.
func TestGemmA8W4NoAlloc(t *testing.T) {
	if !Supported(AVX512) {
		t.Skip("no AVX-512 VNNI")
	}
	prev, _ := SetISA(AVX512)
	defer SetISA(prev)
	const rows, cols, ntok = 8, 256, 9
	m := newBenchMat(rows, cols, false, true)
	x := make([]int8, ntok*cols)
	xs := slices.Repeat([]float32{0.5}, ntok)
	out := make([]float32, rows*ntok)
	if n := testing.AllocsPerRun(50, func() { GemmA8W4(out, rows, m.codes, m.tables, m.scale, m.rowSum, x, xs) }); n != 0 {
		t.Errorf("GemmA8W4 allocates %v times per call", n)
	}
}

// TestGemmWideRows: rows wide enough that the AVX-512 GEMMs shrink their token block
// below gemmTokenBlockMax (several blocks and an overlapping last tile) still give the
// generic twin's bits.
func TestGemmWideRows(t *testing.T) {
	if !Supported(AVX512) {
		t.Skip("no AVX-512 VNNI")
	}
	prev, _ := SetISA(AVX512)
	defer SetISA(prev)
	const rows, cols, ntok = 7, 20480 + 32 + 64, 45
	if b := gemmTokenBlock(a8w4Groups(cols)*128 + 64); b >= ntok || b%gemmI8Toks != 0 {
		t.Fatalf("token block %d: the test wants several blocks of whole tiles", b)
	}
	m := newBenchMat(rows, cols, true, true)
	RowSumsI8(m.rowSum, m.w, cols)
	x := make([]int8, ntok*cols)
	fillRandom(unsafeBytes(x), 11)
	xs := make([]float32, ntok)
	for i := range xs {
		xs[i] = 0.25 + float32(i)/64
	}
	got, want := make([]float32, rows*ntok), make([]float32, rows*ntok)
	GemmI8(got, rows, m.w, m.scale, m.rowSum, x, xs)
	gemmI8Generic(want, rows, m.w, m.scale, m.rowSum, x, xs)
	bitsEqual(t, "GemmI8", got, want)
	RowSumsA8W4(m.rowSum, m.codes, m.tables, cols)
	GemmA8W4(got, rows, m.codes, m.tables, m.scale, m.rowSum, x, xs)
	gemmA8W4Generic(want, rows, m.codes, m.tables, m.scale, m.rowSum, x, xs)
	bitsEqual(t, "GemmA8W4", got, want)
}
