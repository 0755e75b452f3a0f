package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// allISAs runs f once per kernel path this CPU and build support, logging the others.
func allISAs(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	prev := Active()
	defer SetISA(prev)
	for i := Generic; i < numISA; i++ {
		if _, err := SetISA(i); err != nil {
			t.Logf("%s: not supported here, skipped", i)
			continue
		}
		t.Run(i.String(), f)
	}
}

func bitsEqual(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: out[%d] = %v (%#x), generic %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// i8Case is one random matrix/activation set. mode: 0 random, 1 all -128, 2 mix of
// -128 and 127 only, 3 small values.
type i8Case struct {
	rows, cols, ntok int
	w                []int8
	wScale           []float32
	rowSum           []int32
	x                []int8
	xScale           []float32
	codes            []byte
	tables           []int8
}

func extremeI8(r *rand.Rand, mode int) int8 {
	switch mode {
	case 1:
		return -128
	case 2:
		if r.IntN(2) == 0 {
			return -128
		}
		return 127
	case 3:
		return int8(r.IntN(7) - 3)
	}
	return int8(r.Uint32())
}

func newI8Case(r *rand.Rand, rows, cols, ntok, mode int) *i8Case {
	c := &i8Case{rows: rows, cols: cols, ntok: ntok}
	c.w = make([]int8, rows*cols)
	for i := range c.w {
		c.w[i] = extremeI8(r, mode)
	}
	c.x = make([]int8, ntok*cols)
	for i := range c.x {
		c.x[i] = extremeI8(r, mode)
	}
	c.wScale = make([]float32, rows)
	for i := range c.wScale {
		c.wScale[i] = float32(r.Float64()*2e-3 + 1e-4)
	}
	c.xScale = make([]float32, ntok)
	for i := range c.xScale {
		c.xScale[i] = float32(r.Float64()*0.05 + 1e-3)
	}
	// A8W4: codes 0..15; mode 1: all codes 15 / tables -128; mode 2: codes 0 or 15 and
	// tables +-127; mode 3: only code 0.
	ng := a8w4Groups(cols)
	c.codes = make([]byte, rows*cols/2)
	for i := range c.codes {
		switch mode {
		case 1:
			c.codes[i] = 0xFF
		case 2:
			c.codes[i] = []byte{0x00, 0x0F, 0xF0, 0xFF}[r.IntN(4)]
		case 3:
			c.codes[i] = 0
		default:
			c.codes[i] = byte(r.Uint32())
		}
	}
	c.tables = make([]int8, rows*ng*16)
	for i := range c.tables {
		switch mode {
		case 1:
			c.tables[i] = -128
		case 2:
			if r.IntN(2) == 0 {
				c.tables[i] = -127
			} else {
				c.tables[i] = 127
			}
		default:
			c.tables[i] = int8(r.Uint32())
		}
	}
	c.rowSum = make([]int32, rows)
	return c
}

func (c *i8Case) sumsI8() []int32 {
	s := make([]int32, c.rows)
	RowSumsI8(s, c.w, c.cols)
	return s
}

func (c *i8Case) sumsA4() []int32 {
	s := make([]int32, c.rows)
	RowSumsA8W4(s, c.codes, c.tables, c.cols)
	return s
}

var (
	testCols = []int{32, 64, 96, 128, 160, 224, 256, 352, 1024, 4096 + 32}
	testRows = []int{1, 2, 3, 4, 5, 17, 64}
)

func TestGemvI8Paths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	allISAs(t, func(t *testing.T) {
		for _, cols := range testCols {
			for _, rows := range testRows {
				for mode := 0; mode < 4; mode++ {
					c := newI8Case(r, rows, cols, 1, mode)
					rs := c.sumsI8()
					want := make([]float32, rows)
					gemvI8Generic(want, c.w, c.wScale, rs, c.x, c.xScale[0])
					got := make([]float32, rows)
					GemvI8(got, c.w, c.wScale, rs, c.x, c.xScale[0])
					bitsEqual(t, "GemvI8", got, want)
				}
			}
		}
	})
}

func TestGemvA8W4Paths(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	allISAs(t, func(t *testing.T) {
		for _, cols := range testCols {
			for _, rows := range testRows {
				for mode := 0; mode < 4; mode++ {
					c := newI8Case(r, rows, cols, 1, mode)
					rs := c.sumsA4()
					want := make([]float32, rows)
					gemvA8W4Generic(want, c.codes, c.tables, c.wScale, rs, c.x, c.xScale[0])
					got := make([]float32, rows)
					GemvA8W4(got, c.codes, c.tables, c.wScale, rs, c.x, c.xScale[0])
					bitsEqual(t, "GemvA8W4", got, want)
				}
			}
		}
	})
}

func TestGemmPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	allISAs(t, func(t *testing.T) {
		for _, cols := range []int{32, 64, 128, 160, 352, 4096 + 32} {
			for _, rows := range []int{1, 3, 4, 17, 64} {
				for _, ntok := range []int{1, 3, 4, 5, 8, 67} {
					if cols*rows*ntok > 1<<22 {
						continue
					}
					mode := r.IntN(4)
					c := newI8Case(r, rows, cols, ntok, mode)
					want := make([]float32, rows*ntok)
					got := make([]float32, rows*ntok)
					rs := c.sumsI8()
					gemmI8Generic(want, rows, c.w, c.wScale, rs, c.x, c.xScale)
					GemmI8(got, rows, c.w, c.wScale, rs, c.x, c.xScale)
					bitsEqual(t, "GemmI8", got, want)
					rs = c.sumsA4()
					gemmA8W4Generic(want, rows, c.codes, c.tables, c.wScale, rs, c.x, c.xScale)
					GemmA8W4(got, rows, c.codes, c.tables, c.wScale, rs, c.x, c.xScale)
					bitsEqual(t, "GemmA8W4", got, want)
				}
			}
		}
	})
}

// TestInt8GenericReference checks the generic twins themselves against a float64
// evaluation of the contract formulas (dequantized weights, int64 sums).
func TestInt8GenericReference(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, cols := range []int{32, 128, 160, 4096 + 32} {
		for mode := 0; mode < 4; mode++ {
			rows, ntok := 5, 3
			c := newI8Case(r, rows, cols, ntok, mode)
			got := make([]float32, rows*ntok)
			gemmI8Generic(got, rows, c.w, c.wScale, nil, c.x, c.xScale)
			gotA := make([]float32, rows*ntok)
			gemmA8W4Generic(gotA, rows, c.codes, c.tables, c.wScale, nil, c.x, c.xScale)
			for tk := 0; tk < ntok; tk++ {
				for row := 0; row < rows; row++ {
					var s, sa float64
					for k := 0; k < cols; k++ {
						xv := float64(c.x[tk*cols+k])
						s += float64(c.w[row*cols+k]) * xv
						// code k of the row: block k/32, byte (k%32)%16, nibble k%32 >= 16
						b := c.codes[row*cols/2+(k/32)*16+(k%32)%16]
						q := b & 15
						if k%32 >= 16 {
							q = b >> 4
						}
						sa += float64(c.tables[(row*a8w4Groups(cols)+k/128)*16+int(q)]) * xv
					}
					sc := float64(c.wScale[row]) * float64(c.xScale[tk])
					for _, p := range []struct {
						name string
						got  float32
						want float64
					}{{"GemmI8", got[tk*rows+row], sc * s}, {"GemmA8W4", gotA[tk*rows+row], sc * sa}} {
						if d := math.Abs(float64(p.got) - p.want); d > 1e-6*math.Abs(p.want)+1e-30 {
							t.Fatalf("%s generic cols=%d mode=%d [%d,%d]: %v, float64 %v", p.name, cols, mode, tk, row, p.got, p.want)
						}
					}
				}
			}
		}
	}
	// the row sums used by the assembly paths
	c := newI8Case(r, 3, 160, 1, 0)
	rs, ra := c.sumsI8(), c.sumsA4()
	for row := 0; row < 3; row++ {
		var s, sa int32
		for k := 0; k < 160; k++ {
			s += int32(c.w[row*160+k])
			b := c.codes[row*80+(k/32)*16+(k%32)%16]
			q := b & 15
			if k%32 >= 16 {
				q = b >> 4
			}
			sa += int32(c.tables[(row*2+k/128)*16+int(q)])
		}
		if rs[row] != s || ra[row] != sa {
			t.Fatalf("row sums: %d %d want %d %d", rs[row], ra[row], s, sa)
		}
	}
}

func TestQuantizeI8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{0, 1, 31, 4096} {
		x := randVec(r, n)
		dst := make([]int8, n)
		s := QuantizeI8(dst, x)
		var amax float64
		for _, v := range x {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		if n > 0 && math.Abs(float64(s)-amax/127) > 1e-7*amax {
			t.Fatalf("scale %v want %v", s, amax/127)
		}
		for i, v := range x {
			want := math.Round(float64(v) * 127 / amax)
			if d := math.Abs(float64(dst[i]) - want); d > 1 || dst[i] < -127 {
				t.Fatalf("x[%d]=%v -> %d want %v", i, v, dst[i], want)
			}
			if math.Abs(float64(dst[i])*float64(s)-float64(v)) > float64(s)*0.5001 {
				t.Fatalf("x[%d]=%v -> %d*%v off by more than half a step", i, v, dst[i], s)
			}
		}
	}
	dst := []int8{1, 2, 3}
	if s := QuantizeI8(dst, make([]float32, 3)); s != 0 || dst[0] != 0 || dst[2] != 0 {
		t.Fatalf("zeros: scale %v dst %v", s, dst)
	}
}

func TestStreamRead(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 3*4096+77)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	allISAs(t, func(t *testing.T) {
		for _, n := range []int{0, 7, 511, 512, 513, 1024 + 100, len(buf)} {
			if got, want := StreamRead(buf[:n]), streamReadGeneric(buf[:n]); got != want {
				t.Fatalf("n=%d: %#x want %#x", n, got, want)
			}
		}
	})
}

func TestInt8NoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	allISAs(t, func(t *testing.T) {
		for _, rows := range []int{3, 17} {
			c := newI8Case(r, rows, 256, 5, 0)
			out := make([]float32, rows*5)
			n := testing.AllocsPerRun(20, func() {
				GemvI8(out[:rows], c.w, c.wScale, c.rowSum, c.x[:256], 1)
				GemvA8W4(out[:rows], c.codes, c.tables, c.wScale, c.rowSum, c.x[:256], 1)
				GemmI8(out, rows, c.w, c.wScale, c.rowSum, c.x, c.xScale)
				GemmA8W4(out, rows, c.codes, c.tables, c.wScale, c.rowSum, c.x, c.xScale)
				QuantizeI8(c.x, out)
				StreamRead(c.codes)
			})
			if n != 0 {
				t.Fatalf("rows=%d: %v allocations per run", rows, n)
			}
		}
	})
}

func TestInt8Panics(t *testing.T) {
	mustPanic := func(name string, f func()) {
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("cols 48", func() {
		GemvI8(make([]float32, 1), make([]int8, 48), make([]float32, 1), make([]int32, 1), make([]int8, 48), 1)
	})
	mustPanic("short w", func() {
		GemvI8(make([]float32, 2), make([]int8, 32), make([]float32, 2), make([]int32, 2), make([]int8, 32), 1)
	})
	mustPanic("short tables", func() {
		GemvA8W4(make([]float32, 1), make([]byte, 80), make([]int8, 16), make([]float32, 1), make([]int32, 1), make([]int8, 160), 1)
	})
}

// fuzzShape derives a small problem from fuzz bytes: rows 1..9, cols 32..320, then the data.
func fuzzCase(data []byte) *i8Case {
	if len(data) < 2 {
		return nil
	}
	rows := int(data[0])%9 + 1
	cols := (int(data[1])%10 + 1) * 32
	data = data[2:]
	c := newI8Case(rand.New(rand.NewPCG(uint64(len(data)), 9)), rows, cols, 1, 0)
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
		c.x[i] = int8(at(i * 7))
	}
	for i := range c.codes {
		c.codes[i] = at(i * 3)
	}
	for i := range c.tables {
		c.tables[i] = int8(at(i * 5))
	}
	return c
}

func fuzzSeeds(f *testing.F) {
	f.Add([]byte{0, 0})
	f.Add([]byte{3, 3, 0x80, 0x7f, 0xff, 0x00})
	f.Add([]byte{8, 9, 0x80})
	f.Add([]byte{16, 4, 0x7f, 0x80, 0x01, 0xfe, 0x0f, 0xf0})
}

func FuzzGemvI8(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := fuzzCase(data)
		if c == nil {
			return
		}
		rs := c.sumsI8()
		want := make([]float32, c.rows)
		gemvI8Generic(want, c.w, c.wScale, rs, c.x, c.xScale[0])
		allISAs(t, func(t *testing.T) {
			got := make([]float32, c.rows)
			GemvI8(got, c.w, c.wScale, rs, c.x, c.xScale[0])
			bitsEqual(t, "GemvI8", got, want)
		})
	})
}

func FuzzGemvA8W4(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := fuzzCase(data)
		if c == nil {
			return
		}
		rs := c.sumsA4()
		want := make([]float32, c.rows)
		gemvA8W4Generic(want, c.codes, c.tables, c.wScale, rs, c.x, c.xScale[0])
		allISAs(t, func(t *testing.T) {
			got := make([]float32, c.rows)
			GemvA8W4(got, c.codes, c.tables, c.wScale, rs, c.x, c.xScale[0])
			bitsEqual(t, "GemvA8W4", got, want)
		})
	})
}
