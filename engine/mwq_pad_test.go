package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// TestMWQPaddedProducts: MWQ matrices whose width is not a multiple of 128 (64, 200, and
// 1100, past the small stack copy; 256 as the unpadded control) are written padded (docs/format.md "MWQ"), load through
// the stacked-expert path, and at every width multiply like their dequantised float
// form (quant's MWQTensor.Dequant, the quantizer's own reference) times the int8-rounded
// input, in any block of rows, without allocating. The padded weights do not decode to
// 0 (a ±1 plane cannot), so a product that let a padded column see a nonzero activation
// would miss the reference by about one weight times one activation, far above the
// tolerance.
func TestMWQPaddedProducts(t *testing.T) {
	const rows, nExpert = 37, 2
	for _, scheme := range []string{"mwq24", "mwq58"} {
		cfg := MWQSchemes[scheme]
		for _, cols := range []int{64, 200, 256, 1100} {
			t.Run(fmt.Sprintf("%s/cols%d", scheme, cols), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(cols), 7))
				// A Gram matrix of correlated inputs, so that the calibrated (and GPTQ)
				// fit runs on the padded geometry too (not for the widest, to keep the
				// test quick: it checks the product path).
				H := make([]float64, cols*cols)
				if cols > 1000 {
					H = nil
				}
				for range 3 * cols * len(H) / max(len(H), 1) {
					v := make([]float64, cols)
					c := rng.NormFloat64()
					for i := range v {
						v[i] = rng.NormFloat64() + 0.5*c
					}
					for i := range v {
						for j := range v {
							H[i*cols+j] += v[i] * v[j]
						}
					}
				}
				pc := quant.MWQPadCols(cols)
				ts := make([]*quant.MWQTensor, nExpert)
				base := []byte{}
				planes := make([][]byte, cfg.MaxBits-cfg.BaseBits)
				for e := range ts {
					w := make([]float32, rows*cols)
					for i := range w {
						w[i] = float32(rng.NormFloat64() * 0.05)
					}
					mt, err := quant.QuantizeMWQ(w, rows, cols, H, cfg)
					if err != nil {
						t.Fatal(err)
					}
					if mt.Cols != cols || mt.PadCols != pc || len(mt.Base) != rows*pc/128*quant.MWQBaseBlockBytes(cfg.BaseBits) {
						t.Fatalf("tensor %d cols, %d stored, %d base bytes; want %d, %d, %d", mt.Cols, mt.PadCols, len(mt.Base), cols, pc, rows*pc/128*quant.MWQBaseBlockBytes(cfg.BaseBits))
					}
					ts[e] = mt
					base = append(base, mt.Base...)
					for i, p := range mt.Planes {
						if len(p) != rows*pc/128*quant.MWQPlaneBlockBytes {
							t.Fatalf("plane %d: %d bytes", i, len(p))
						}
						planes[i] = append(planes[i], p...)
					}
				}
				dt, _ := quant.MWQBaseDType(cfg.BaseBits)
				gw := loader.NewGGUFWriter()
				const name = "blk.0.ffn_down_exps.weight"
				if err := gw.AddTensor(name, dt, []int{nExpert, rows, pc}, base); err != nil {
					t.Fatal(err)
				}
				for i, p := range planes {
					if err := gw.AddTensor(fmt.Sprintf("%s.mwq%d", name, cfg.BaseBits+1+i), loader.MWQPlane, []int{nExpert, rows, pc}, p); err != nil {
						t.Fatal(err)
					}
				}
				path := filepath.Join(t.TempDir(), "pad.gguf")
				if err := gw.WriteFile(path); err != nil {
					t.Fatal(err)
				}
				lm, err := loader.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer lm.Close()
				ms, err := binder{lm}.experts("blk.%d.ffn_down_exps.weight", "", 0, nExpert, rows, cols)
				if err != nil {
					t.Fatal(err)
				}

				x := make([]float32, cols)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				xq := make([]byte, actI8Bytes(cols))
				quantizeActI8(xq, x)
				x8, xs, _ := actI8View(xq, cols)
				want := make([]float32, rows*cols)
				got := make([]float32, rows)
				row := make([]float32, cols)
				for e, mm := range ms {
					for b := cfg.BaseBits; b <= cfg.MaxBits; b++ {
						if mm.mwq.setBits(b) != b {
							t.Fatalf("setBits(%d) refused", b)
						}
						ts[e].Dequant(b, want)
						// Two blocks of rows, the second starting mid-matrix, as the
						// pool's chunks do.
						for _, blk := range [][2]int{{0, 5}, {5, rows}} {
							mm.MulRowsQ(got[blk[0]:blk[1]], blk[0], blk[1], xq)
						}
						for r := range rows {
							var ref, mag float64
							for k := range cols {
								v := float64(want[r*cols+k]) * float64(x8[k])
								ref += v
								mag += math.Abs(v)
							}
							ref *= float64(xs)
							// The kernel's float combination per group rounds a few
							// terms of the size of the group's |w|·|x| sum.
							tol := 1e-5*mag*float64(xs) + 1e-6
							if d := math.Abs(float64(got[r]) - ref); d > tol {
								t.Fatalf("expert %d at %d bits, row %d: product %v, dequantised reference %v (tolerance %.2g)", e, b, r, got[r], ref, tol)
							}
							mm.RowF32(r, row)
							for k, v := range row {
								if v != want[r*cols+k] {
									t.Fatalf("expert %d at %d bits: RowF32 row %d col %d = %v, quant's Dequant %v", e, b, r, k, v, want[r*cols+k])
								}
							}
						}
					}
				}
				if a := testing.AllocsPerRun(10, func() { ms[1].MulRowsQ(got, 0, rows, xq) }); a != 0 {
					t.Errorf("a product allocates %.1f times", a)
				}
			})
		}
	}
}

// TestMWQPaddedAct: the I8 act encoding the products read pads its values with zeros
// and its group sums are those of the padded values, which the padded products rely on.
func TestMWQPaddedAct(t *testing.T) {
	for _, n := range []int{43, 64, 200} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%9) - 3.5
		}
		xq := make([]byte, actI8Bytes(n))
		for i := range xq {
			xq[i] = 0x55 // whatever the buffer held before
		}
		quantizeActI8(xq, x)
		x8, _, gsum := actI8View(xq, n)
		if len(gsum) != (n+kernels.MWQGroup-1)/kernels.MWQGroup {
			t.Fatalf("n=%d: %d group sums", n, len(gsum))
		}
		for k := n; k < len(x8); k++ {
			if x8[k] != 0 {
				t.Fatalf("n=%d: padded value %d is %d", n, k, x8[k])
			}
		}
		for g := range gsum {
			var s int32
			for _, v := range x8[g*128 : min(len(x8), (g+1)*128)] {
				s += int32(v)
			}
			if s != gsum[g] {
				t.Fatalf("n=%d: group %d sum %d, stored %d", n, g, s, gsum[g])
			}
		}
	}
}
