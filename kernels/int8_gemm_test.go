package kernels

import (
	"math/rand/v2"
	"testing"
)

// gemmFuzzCase builds a GEMM case from fuzz bytes: rows 1..20 (several 6-row strips
// and an overlapping last one), cols 32..320, 1..12 tokens (whole and overlapping
// tiles of 4), weights, activations, codes and tables taken from the data.
func gemmFuzzCase(data []byte) *i8Case {
	if len(data) < 3 {
		return nil
	}
	rows := int(data[0])%20 + 1
	cols := (int(data[1])%10 + 1) * 32
	ntok := int(data[2])%12 + 1
	data = data[3:]
	c := newI8Case(rand.New(rand.NewPCG(uint64(len(data)), 10)), rows, cols, ntok, 0)
	at := func(i int) byte {
		if len(data) == 0 {
			return 0
		}
		return data[i%len(data)]
	}
	for i := range c.w {
		c.w[i] = int8(at(i))
	}
	for i := range c.x {
		c.x[i] = int8(at(i*7 + 1))
	}
	for i := range c.codes {
		c.codes[i] = at(i*3 + 2)
	}
	for i := range c.tables {
		c.tables[i] = int8(at(i*5 + 3))
	}
	return c
}

// FuzzGemmI8 compares GemmI8 and GemmA8W4 on every ISA with the generic twins.
func FuzzGemmI8(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{6, 1, 4, 0x80, 0x7f})
	f.Add([]byte{13, 2, 11, 0x80, 0x80, 0x7f, 0x01})
	f.Add([]byte{19, 9, 7, 0x7f, 0x80, 0x01, 0xfe, 0x0f, 0xf0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := gemmFuzzCase(data)
		if c == nil {
			return
		}
		rsI, rsA := c.sumsI8(), c.sumsA4()
		wantI := make([]float32, c.rows*c.ntok)
		wantA := make([]float32, c.rows*c.ntok)
		gemmI8Generic(wantI, c.rows, c.w, c.wScale, rsI, c.x, c.xScale)
		gemmA8W4Generic(wantA, c.rows, c.codes, c.tables, c.wScale, rsA, c.x, c.xScale)
		allISAs(t, func(t *testing.T) {
			got := make([]float32, c.rows*c.ntok)
			GemmI8(got, c.rows, c.w, c.wScale, rsI, c.x, c.xScale)
			bitsEqual(t, "GemmI8", got, wantI)
			GemmA8W4(got, c.rows, c.codes, c.tables, c.wScale, rsA, c.x, c.xScale)
			bitsEqual(t, "GemmA8W4", got, wantA)
		})
	})
}

// TestGemmI8ManyBlocks: more tokens than one token block and more strips than the
// prefetch distance, so every strip's copy is made by its first tile in every block.
func TestGemmI8ManyBlocks(t *testing.T) {
	const rows, cols, ntok = 23, 4096, 263 // 263: two AVX-512 token blocks of 128 and a partial one
	r := rand.New(rand.NewPCG(12, 12))
	gemmI8MatchesTwin(t, newI8Case(r, rows, cols, ntok, 0), rows, ntok)
}

// gemmI8MatchesTwin checks GemmI8 on every ISA bit for bit against the generic twin.
func gemmI8MatchesTwin(t *testing.T, c *i8Case, rows, ntok int) {
	t.Helper()
	rs := c.sumsI8()
	want := make([]float32, rows*ntok)
	gemmI8Generic(want, rows, c.w, c.wScale, rs, c.x, c.xScale)
	allISAs(t, func(t *testing.T) {
		got := make([]float32, rows*ntok)
		GemmI8(got, rows, c.w, c.wScale, rs, c.x, c.xScale)
		bitsEqual(t, "GemmI8", got, want)
	})
}

// TestGemmI8BlockTails: token counts just past a token block (128 tokens on AVX-512 and
// AVX-VNNI, 126 on AVX2 for rows of 256 columns), so the last block holds fewer tokens
// than a tile and is computed by a tile that overlaps the previous block.
func TestGemmI8BlockTails(t *testing.T) {
	const rows, cols = 7, 256
	r := rand.New(rand.NewPCG(14, 14))
	for _, ntok := range []int{127, 128, 129, 130, 131} {
		gemmI8MatchesTwin(t, newI8Case(r, rows, cols, ntok, ntok%4), rows, ntok)
	}
}

// FuzzGemmA8W4G compares GemmA8W4G on every ISA with the table twin on the expanded
// tables; the stored pairs come from the data, reduced to the valid range (z <= 15,
// S2 <= 127), codes arbitrary.
func FuzzGemmA8W4G(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{6, 3, 4, 0x0f, 0x7f, 0xff})
	f.Add([]byte{13, 4, 11, 0x80, 0x01, 0x7f, 0x10})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := gemmFuzzCase(data)
		if c == nil {
			return
		}
		ng := a8w4Groups(c.cols)
		groups := make([]byte, c.rows*ng*2)
		for i := range c.rows * ng {
			b := byte(0)
			if len(data) > 3 {
				b = data[3+i%(len(data)-3)]
			}
			groups[2*i], groups[2*i+1] = b&15, (b>>1)&127
		}
		tables := make([]int8, c.rows*ng*16)
		A8W4Tables(tables, groups)
		rs := make([]int32, c.rows)
		RowSumsA8W4(rs, c.codes, tables, c.cols)
		want := make([]float32, c.rows*c.ntok)
		gemmA8W4Generic(want, c.rows, c.codes, tables, c.wScale, rs, c.x, c.xScale)
		allISAs(t, func(t *testing.T) {
			got := make([]float32, c.rows*c.ntok)
			GemmA8W4G(got, c.rows, c.codes, groups, c.wScale, rs, c.x, c.xScale)
			bitsEqual(t, "GemmA8W4G", got, want)
		})
	})
}
