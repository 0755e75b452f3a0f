package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// multiCase is one batched dot product against its single-vector kernel.
type multiCase struct {
	name   string
	elem   int // bytes per row element
	multi  func(row []byte, xs [][]float32, out []float32)
	single func(row []byte, x []float32) float32
}

var multiCases = []multiCase{
	{"F16", 2, DotF16Multi, DotF16},
	{"F32", 4, DotF32BytesMulti, DotF32Bytes},
	{"BF16", 2, DotBF16Multi, DotBF16},
}

// multiRow encodes w as a row of c's element type at byte offset off of a fresh buffer
// (off = 1 makes float32 rows unaligned).
func multiRow(c multiCase, w []float32, off int) []byte {
	b := make([]byte, off+c.elem*len(w)+3)
	row := b[off : off+c.elem*len(w)]
	for i, v := range w {
		switch c.name {
		case "F16":
			binary.LittleEndian.PutUint16(row[2*i:], F32ToF16(v))
		case "BF16":
			binary.LittleEndian.PutUint16(row[2*i:], F32ToBF16(v))
		default:
			binary.LittleEndian.PutUint32(row[4*i:], math.Float32bits(v))
		}
	}
	return row
}

// checkMultiExact fails unless every out[k] of c.multi is c.single(row, xs[k]) bit for bit.
func checkMultiExact(t *testing.T, c multiCase, row []byte, xs [][]float32, what string) {
	t.Helper()
	out := make([]float32, len(xs)+1)
	out[len(xs)] = 12345 // must stay untouched
	c.multi(row, xs, out[:len(xs)])
	for k, x := range xs {
		want := c.single(row, x)
		if math.Float32bits(out[k]) != math.Float32bits(want) {
			t.Fatalf("%s %s: vector %d of %d: multi %v (%#x), single %v (%#x)", c.name, what, k, len(xs),
				out[k], math.Float32bits(out[k]), want, math.Float32bits(want))
		}
	}
	if out[len(xs)] != 12345 {
		t.Fatalf("%s %s: wrote past len(xs)", c.name, what)
	}
}

// TestDotMultiExact: on every ISA, each vector of a batched dot equals the single-vector
// kernel bit for bit, for lengths around every vector width and 1..9 vectors (every
// grouping of the assembly: 4+4+1 on AVX-512, 3+3+2+1 on AVX2, ...).
func TestDotMultiExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	eachISA(t, func(t *testing.T, isa ISA) {
		for _, c := range multiCases {
			for _, n := range testLengths {
				w := randVec(r, n)
				for i := range w {
					w[i] *= float32(math.Ldexp(1, r.IntN(20)-10)) // spread magnitudes: order matters
				}
				for _, off := range []int{0, 1} {
					row := multiRow(c, w, off)
					for nv := 1; nv <= 9; nv++ {
						xs := make([][]float32, nv)
						for k := range xs {
							xs[k] = randVec(r, n)
						}
						checkMultiExact(t, c, row, xs, fmt.Sprintf("n=%d off=%d", n, off))
					}
				}
			}
			// Special values: inf and NaN flow through exactly as in the single kernel.
			n := 77
			w := randVec(r, n)
			w[3], w[40] = float32(math.Inf(1)), float32(math.NaN())
			xs := [][]float32{randVec(r, n), randVec(r, n), randVec(r, n), randVec(r, n), randVec(r, n)}
			xs[1][3] = 0
			xs[2][70] = float32(math.Inf(-1))
			checkMultiExact(t, c, multiRow(c, w, 0), xs, "special")
			c.multi(nil, nil, nil) // no vectors: nothing to do
		}
	})
}

func TestDotMultiPanics(t *testing.T) {
	for _, c := range multiCases {
		for _, tc := range []struct {
			name string
			row  []byte
			xs   [][]float32
			out  []float32
		}{
			{"ragged", make([]byte, 64), [][]float32{make([]float32, 8), make([]float32, 7)}, make([]float32, 2)},
			{"short out", make([]byte, 64), [][]float32{make([]float32, 8), make([]float32, 8)}, make([]float32, 1)},
			{"short row", make([]byte, 4), [][]float32{make([]float32, 8)}, make([]float32, 1)},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s %s: no panic", c.name, tc.name)
					}
				}()
				c.multi(tc.row, tc.xs, tc.out)
			}()
		}
	}
}

func TestDotMultiNoAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 1000
	xs := make([][]float32, 8)
	for k := range xs {
		xs[k] = randVec(r, n)
	}
	out := make([]float32, 8)
	eachISA(t, func(t *testing.T, isa ISA) {
		for _, c := range multiCases {
			row := multiRow(c, randVec(r, n), 0)
			if a := testing.AllocsPerRun(20, func() { c.multi(row, xs, out) }); a != 0 {
				t.Errorf("%s: %v allocations per call", c.name, a)
			}
		}
	})
}

// FuzzDotMulti: the batched dots equal the single-vector kernels bit for bit on every
// ISA, and the generic twins (the Generic path) equal their single-vector twins.
func FuzzDotMulti(f *testing.F) {
	floatFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		nv := int(data[0])%9 + 1
		x := fuzzFloats(data[1:])
		n := len(x) / (nv + 1)
		w := x[:n]
		xs := make([][]float32, nv)
		for k := range xs {
			xs[k] = x[(k+1)*n : (k+2)*n]
		}
		eachISA(t, func(t *testing.T, isa ISA) {
			for _, c := range multiCases {
				row := multiRow(c, w, 0)
				checkMultiExact(t, c, row, xs, "fuzz")
				if isa == Generic {
					out := make([]float32, nv)
					switch c.name {
					case "F16":
						dotF16MultiGeneric(row, xs, out)
					case "F32":
						dotF32BytesMultiGeneric(row, xs, out)
					default:
						continue
					}
					for k := range xs {
						want := c.single(row, xs[k])
						if math.Float32bits(out[k]) != math.Float32bits(want) {
							t.Fatalf("%s generic twin: vector %d: %v, want %v", c.name, k, out[k], want)
						}
					}
				}
			}
		})
	})
}

// BenchmarkDotMulti: one row against 8 vectors, batched vs 8 single-vector
// calls on the active ISA (both in the same run; "x_single" = single time / batched time).
func BenchmarkDotMulti(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	const nv = 8
	for _, n := range []int{256, 1024, 4096} {
		xs := make([][]float32, nv)
		for k := range xs {
			xs[k] = randVec(r, n)
		}
		out := make([]float32, nv)
		for _, c := range multiCases[:2] {
			row := multiRow(c, randVec(r, n), 0)
			b.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(b *testing.B) {
				var tm, ts time.Duration
				for range b.N {
					s := time.Now()
					for range 16 {
						c.multi(row, xs, out)
					}
					tm += time.Since(s)
					s = time.Now()
					for range 16 {
						for k, x := range xs {
							out[k] = c.single(row, x)
						}
					}
					ts += time.Since(s)
				}
				b.ReportMetric(float64(tm.Nanoseconds())/float64(16*b.N*nv), "ns/vec")
				b.ReportMetric(float64(ts.Nanoseconds())/float64(16*b.N*nv), "ns/vec_single")
				b.ReportMetric(float64(ts)/float64(tm), "x_single")
			})
		}
	}
}
