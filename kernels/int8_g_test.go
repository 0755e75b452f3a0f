package kernels

import (
	"math/rand/v2"
	"testing"
)

// Tests of the table-free A8W4 products (GemvA8W4G, GemmA8W4G, RowSumsA8W4G): every path
// against the generic twin, and the twin against the table path on tables expanded by
// A8W4Tables (which the engine used to build at load), so that the results stay the bits
// the table kernels gave.

// gCase is an A8W4 matrix in the stored form: codes and (z, S2) pairs.
type gCase struct {
	rows, cols, ntok int
	codes, groups    []byte
	s1               []float32
	x                []int8
	xScale           []float32
}

// newGCase: mode 0 valid DGQ groups (z 0..15, S2 1..127, codes within |S2*(q-z)| <= 127,
// as the quantizer writes them); 1 any z 0..15 and S2 0..127 (the kernels' range) with
// codes anywhere (clamped entries); 2 the extremes z in {0, 15}, S2 in {1, 127}, with codes 0..15 anywhere;
// 3 z 0 and S2 1 (entries = codes) with x at -128/127.
func newGCase(r *rand.Rand, rows, cols, ntok, mode int) *gCase {
	c := &gCase{rows: rows, cols: cols, ntok: ntok}
	ng := a8w4Groups(cols)
	c.groups = make([]byte, rows*ng*2)
	for i := 0; i < rows*ng; i++ {
		var z, s2 int
		switch mode {
		case 0:
			z, s2 = r.IntN(16), 1+r.IntN(127)
			if r.IntN(3) == 0 {
				s2 = 1 + r.IntN(16)
			}
		case 1:
			z, s2 = r.IntN(16), r.IntN(128)
		case 2:
			z, s2 = 15*r.IntN(2), []int{1, 127}[r.IntN(2)]
		case 3:
			z, s2 = 0, 1
		}
		c.groups[2*i], c.groups[2*i+1] = byte(int8(z)), byte(int8(s2))
	}
	c.codes = make([]byte, rows*cols/2)
	cb := cols / 2
	for row := 0; row < rows; row++ {
		for i := 0; i < cb; i++ {
			g := row*ng + i/64
			z, s2 := int(int8(c.groups[2*g])), int(int8(c.groups[2*g+1]))
			code := func() byte {
				q := r.IntN(16)
				if mode == 0 { // clamp as the quantizer does: |S2*(q-z)| <= 127
					lim := 127 / s2
					q = max(0, z-lim, min(15, z+lim, q))
				}
				return byte(q)
			}
			c.codes[row*cb+i] = code() | code()<<4
		}
	}
	c.s1 = make([]float32, rows)
	for i := range c.s1 {
		c.s1[i] = float32(r.Float64()*2e-3 + 1e-4)
	}
	c.x = make([]int8, ntok*cols)
	for i := range c.x {
		if mode == 3 {
			c.x[i] = []int8{-128, 127}[r.IntN(2)]
		} else {
			c.x[i] = int8(r.Uint32())
		}
	}
	c.xScale = make([]float32, ntok)
	for i := range c.xScale {
		c.xScale[i] = float32(r.Float64()*0.05 + 1e-3)
	}
	return c
}

func (c *gCase) tables() []int8 {
	t := make([]int8, c.rows*a8w4Groups(c.cols)*16)
	A8W4Tables(t, c.groups)
	return t
}

func (c *gCase) rowSums() []int32 {
	s := make([]int32, c.rows)
	RowSumsA8W4G(s, c.codes, c.groups, c.cols)
	return s
}

var gCols = []int{32, 64, 96, 128, 160, 224, 256, 352, 480, 512, 640, 896, 1024, 4096 + 32, 4096 + 128}

func TestA8W4Tables(t *testing.T) {
	// every (z, S2) byte pair against the definition, evaluated independently (pairs
	// in the kernels' range come from a8w4LUT, the others are computed)
	groups := make([]byte, 2*65536)
	for i := 0; i < 65536; i++ {
		groups[2*i], groups[2*i+1] = byte(i), byte(i>>8)
	}
	tab := make([]int8, 16*65536)
	A8W4Tables(tab, groups)
	for i := 0; i < 65536; i++ {
		z, s2 := int64(int8(byte(i))), int64(int8(byte(i>>8)))
		for q := int64(0); q < 16; q++ {
			v := s2 * (q - z)
			if v > 127 {
				v = 127
			}
			if v < -127 {
				v = -127
			}
			if int64(tab[16*i+int(q)]) != v {
				t.Fatalf("z %d S2 %d q %d: %d want %d", z, s2, q, tab[16*i+int(q)], v)
			}
		}
	}
}

func TestGemvA8W4GPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 21))
	allISAs(t, func(t *testing.T) {
		for _, cols := range gCols {
			for _, rows := range testRows {
				for mode := 0; mode < 4; mode++ {
					c := newGCase(r, rows, cols, 1, mode)
					tab := c.tables()
					rs := c.rowSums()
					// the twin equals the table path's twin
					want := make([]float32, rows)
					gemvA8W4Generic(want, c.codes, tab, c.s1, rs, c.x, c.xScale[0])
					gen := make([]float32, rows)
					gemvA8W4GGeneric(gen, c.codes, c.groups, c.s1, rs, c.x, c.xScale[0])
					bitsEqual(t, "gemvA8W4GGeneric vs table twin", gen, want)
					got := make([]float32, rows)
					GemvA8W4G(got, c.codes, c.groups, c.s1, rs, c.x, c.xScale[0])
					bitsEqual(t, "GemvA8W4G", got, want)
					clear(got)
					GemvA8W4(got, c.codes, tab, c.s1, rs, c.x, c.xScale[0])
					bitsEqual(t, "GemvA8W4 (tables)", got, want)
				}
			}
		}
	})
}

func TestGemmA8W4GPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 22))
	allISAs(t, func(t *testing.T) {
		for _, cols := range []int{32, 128, 160, 480, 640, 4096 + 32, 4096 + 128} {
			for _, rows := range []int{1, 3, 4, 6, 7, 17, 64} {
				for _, ntok := range []int{1, 3, 4, 5, 8, 67} {
					if cols*rows*ntok > 1<<22 {
						continue
					}
					c := newGCase(r, rows, cols, ntok, r.IntN(4))
					tab := c.tables()
					rs := c.rowSums()
					want := make([]float32, rows*ntok)
					gemmA8W4Generic(want, rows, c.codes, tab, c.s1, rs, c.x, c.xScale)
					got := make([]float32, rows*ntok)
					gemmA8W4GGeneric(got, rows, c.codes, c.groups, c.s1, rs, c.x, c.xScale)
					bitsEqual(t, "gemmA8W4GGeneric vs table twin", got, want)
					clear(got)
					GemmA8W4G(got, rows, c.codes, c.groups, c.s1, rs, c.x, c.xScale)
					bitsEqual(t, "GemmA8W4G", got, want)
				}
			}
		}
	})
}

// TestRowSumsA8W4G: every path against a direct sum over the expanded tables (the
// RowSumsA8W4 of the table layout), for valid and arbitrary groups.
func TestRowSumsA8W4G(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 23))
	allISAs(t, func(t *testing.T) {
		for _, cols := range gCols {
			for _, rows := range testRows {
				for mode := 0; mode < 4; mode++ {
					c := newGCase(r, rows, cols, 1, mode)
					want := make([]int32, rows)
					RowSumsA8W4(want, c.codes, c.tables(), cols)
					got := c.rowSums()
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("cols %d rows %d mode %d: row %d sum %d, tables give %d", cols, rows, mode, i, got[i], want[i])
						}
					}
					gen := make([]int32, rows)
					rowSumsA8W4GGeneric(gen, c.codes, c.groups, cols)
					for i := range want {
						if gen[i] != want[i] {
							t.Fatalf("generic: cols %d mode %d: row %d sum %d, tables give %d", cols, mode, i, gen[i], want[i])
						}
					}
				}
			}
		}
	})
}

func TestA8W4GNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(24, 24))
	allISAs(t, func(t *testing.T) {
		for _, rows := range []int{3, 17} {
			c := newGCase(r, rows, 640, 5, 0)
			rs := c.rowSums()
			out := make([]float32, rows*5)
			n := testing.AllocsPerRun(20, func() {
				GemvA8W4G(out[:rows], c.codes, c.groups, c.s1, rs, c.x[:640], 1)
				GemmA8W4G(out, rows, c.codes, c.groups, c.s1, rs, c.x, c.xScale)
				RowSumsA8W4G(rs, c.codes, c.groups, 640)
			})
			if n != 0 {
				t.Fatalf("rows=%d: %v allocations per run", rows, n)
			}
		}
	})
}

func TestA8W4GPanics(t *testing.T) {
	mustPanic := func(name string, f func()) {
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("short groups", func() {
		GemvA8W4G(make([]float32, 1), make([]byte, 80), make([]byte, 2), make([]float32, 1), make([]int32, 1), make([]int8, 160), 1)
	})
	mustPanic("cols 48", func() {
		GemmA8W4G(make([]float32, 1), 1, make([]byte, 24), make([]byte, 2), make([]float32, 1), make([]int32, 1), make([]int8, 48), []float32{1})
	})
	mustPanic("short codes", func() {
		RowSumsA8W4G(make([]int32, 2), make([]byte, 16), make([]byte, 4), 32)
	})
}

// FuzzGemvA8W4G: rows 1..9, cols 32..640 from the first bytes, then codes, pairs (masked
// to z 0..15, S2 0..127) and x from the data; every path against the twin and the twin against the table path.
func FuzzGemvA8W4G(f *testing.F) {
	fuzzSeeds(f)
	f.Add([]byte{4, 14, 0x0f, 0x7f, 0x80, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		rows := int(data[0])%9 + 1
		cols := (int(data[1])%20 + 1) * 32
		data = data[2:]
		at := func(i int) byte {
			if len(data) == 0 {
				return 0
			}
			return data[i%len(data)]
		}
		c := newGCase(rand.New(rand.NewPCG(uint64(len(data)), 9)), rows, cols, 2, 0)
		for i := range c.codes {
			c.codes[i] = at(i * 3)
		}
		for i := 0; i < len(c.groups); i += 2 { // z 0..15, S2 0..127: the kernels' range
			c.groups[i], c.groups[i+1] = at(i*5+1)&15, at(i*5+2)&127
		}
		for i := range c.x {
			c.x[i] = int8(at(i * 7))
		}
		tab := c.tables()
		rs := make([]int32, rows)
		RowSumsA8W4(rs, c.codes, tab, cols)
		want := make([]float32, rows*2)
		gemmA8W4Generic(want, rows, c.codes, tab, c.s1, rs, c.x, c.xScale)
		allISAs(t, func(t *testing.T) {
			gs := c.rowSums()
			for i := range rs {
				if gs[i] != rs[i] {
					t.Fatalf("RowSumsA8W4G row %d: %d want %d", i, gs[i], rs[i])
				}
			}
			got := make([]float32, rows*2)
			GemvA8W4G(got[:rows], c.codes, c.groups, c.s1, rs, c.x[:cols], c.xScale[0])
			bitsEqual(t, "GemvA8W4G", got[:rows], want[:rows])
			GemmA8W4G(got, rows, c.codes, c.groups, c.s1, rs, c.x, c.xScale)
			bitsEqual(t, "GemmA8W4G", got, want)
		})
	})
}
