package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randMWQ fills random MWQ blocks for rows x cols: base of b1 bits and np planes, with
// f16 scales of realistic size.
func randMWQ(rng *rand.Rand, rows, cols, b1, np int) (base []byte, planes [][]byte) {
	nbk := rows * cols / MWQGroup
	base = make([]byte, nbk*MWQBaseBlockBytes(b1))
	for i := range base {
		base[i] = byte(rng.Uint32())
	}
	for i := 0; i < nbk; i++ {
		o := i * MWQBaseBlockBytes(b1)
		s, z := F32ToF16(float32(rng.Float64()*0.02)), F32ToF16(float32(rng.Float64()*float64(int(1)<<b1)))
		base[o], base[o+1], base[o+2], base[o+3] = byte(s), byte(s>>8), byte(z), byte(z>>8)
	}
	for p := 0; p < np; p++ {
		pl := make([]byte, nbk*MWQPlaneBlockBytes)
		for i := range pl {
			pl[i] = byte(rng.Uint32())
		}
		for i := 0; i < nbk; i++ {
			s := F32ToF16(float32(rng.Float64() * 0.01 / float64(int(1)<<p)))
			pl[i*MWQPlaneBlockBytes], pl[i*MWQPlaneBlockBytes+1] = byte(s), byte(s>>8)
		}
		planes = append(planes, pl)
	}
	return base, planes
}

func randI8(rng *rand.Rand, n int, extreme bool) []int8 {
	x := make([]int8, n)
	for i := range x {
		if extreme {
			x[i] = []int8{-128, 127, -127}[rng.IntN(3)]
		} else {
			x[i] = int8(rng.IntN(255) - 127)
		}
	}
	return x
}

// TestMWQDotsTwin: every supported ISA gives the generic twin's int32 dots, for base
// widths 1..7, odd block counts, headers and strides, extreme activations and all-ones
// or all-zero planes.
func TestMWQDotsTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	eachISA(t, func(t *testing.T, isa ISA) {
		for _, cols := range []int{128, 256, 384, 2048} {
			for _, nb := range []int{1, 2, 3, 5, 7} {
				for _, n := range []int{1, 2, 3, 17, 64} {
					for _, mode := range []string{"random", "ones", "zeros", "extreme"} {
						off := 4
						if nb == 1 {
							off = 2
						}
						stride := off + nb*16 + rng.IntN(3)
						blocks := make([]byte, n*stride)
						for i := range blocks {
							switch mode {
							case "ones", "extreme":
								blocks[i] = 0xff
							case "random":
								blocks[i] = byte(rng.Uint32())
							}
						}
						x := randI8(rng, cols, mode == "extreme")
						want := make([]int32, n)
						got := make([]int32, n+1)
						got[n] = 12345
						mwqDotsGeneric(want, blocks, stride, off, nb, x)
						MWQDots(got[:n], blocks, stride, off, nb, x)
						for i := range want {
							if got[i] != want[i] {
								t.Fatalf("cols %d nb %d n %d %s: dots[%d] = %d, want %d", cols, nb, n, mode, i, got[i], want[i])
							}
						}
						if got[n] != 12345 {
							t.Fatalf("wrote past len(dots)")
						}
					}
				}
			}
		}
	})
}

// TestGemvMWQ: GemvMWQ at every width equals a float64 evaluation of the dequantised
// weights (to float32 rounding) and is bit-identical across ISAs.
func TestGemvMWQ(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const rows = 37
	for _, cols := range []int{128, 512, 1536} {
		for _, b1 := range []int{2, 5} {
			base, planes := randMWQ(rng, rows, cols, b1, 3)
			x := randI8(rng, cols, false)
			sums := make([]int32, cols/MWQGroup)
			MWQGroupSums(sums, x)
			for np := 0; np <= 3; np++ {
				var ref []float32
				eachISA(t, func(t *testing.T, isa ISA) {
					out := make([]float32, rows)
					GemvMWQ(out, base, b1, planes[:np], x, sums, 0.01)
					for r := range out {
						want := mwqRefRow(base, b1, planes[:np], r, x) * 0.01
						if d := math.Abs(float64(out[r]) - want); d > 1e-4*(math.Abs(want)+1) {
							t.Fatalf("cols %d b1 %d np %d row %d: %v, want %v", cols, b1, np, r, out[r], want)
						}
					}
					if ref == nil {
						ref = out
						return
					}
					for r := range out {
						if math.Float32bits(out[r]) != math.Float32bits(ref[r]) {
							t.Fatalf("%s differs from generic at row %d: %v vs %v", isa, r, out[r], ref[r])
						}
					}
				})
			}
		}
	}
}

// mwqRefRow dequantises row r weight by weight (W = s1*(q-z) + Σ s_k*(2b-1)) and dots it
// with x in float64.
func mwqRefRow(base []byte, b1 int, planes [][]byte, r int, x []int8) float64 {
	G := len(x) / MWQGroup
	bb := MWQBaseBlockBytes(b1)
	var acc float64
	for g := 0; g < G; g++ {
		i := r*G + g
		blk := base[i*bb:]
		s1 := float64(F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8))
		z := float64(F16ToF32(uint16(blk[2]) | uint16(blk[3])<<8))
		for k := 0; k < MWQGroup; k++ {
			q := 0
			for j := 0; j < b1; j++ {
				q |= int(blk[4+16*j+k/8]>>(k%8)&1) << j
			}
			w := s1 * (float64(q) - z)
			for _, pl := range planes {
				pb := pl[i*MWQPlaneBlockBytes:]
				sk := float64(F16ToF32(uint16(pb[0]) | uint16(pb[1])<<8))
				w += sk * float64(2*int(pb[2+k/8]>>(k%8)&1)-1)
			}
			acc += w * float64(x[g*MWQGroup+k])
		}
	}
	return acc
}

// FuzzMWQDots compares every supported path against the twin on fuzzer-chosen bytes.
func FuzzMWQDots(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{0xff, 0x80}, uint8(2), uint8(3))
	f.Add(make([]byte, 300), []byte{0x7f}, uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, bits, xs []byte, nb, n uint8) {
		nbi := int(nb%7) + 1
		cnt := int(n%40) + 1
		cols := MWQGroup * (1 + int(n)%3)
		stride := 4 + nbi*16
		blocks := make([]byte, cnt*stride)
		for i := range blocks {
			if len(bits) > 0 {
				blocks[i] = bits[i%len(bits)] ^ byte(i*31)
			}
		}
		x := make([]int8, cols)
		for i := range x {
			if len(xs) > 0 {
				x[i] = int8(xs[i%len(xs)] + byte(i*7))
			}
		}
		want, got := make([]int32, cnt), make([]int32, cnt)
		mwqDotsGeneric(want, blocks, stride, 4, nbi, x)
		for isa := Generic; isa < numISA; isa++ {
			prev, err := SetISA(isa)
			if err != nil {
				continue
			}
			MWQDots(got, blocks, stride, 4, nbi, x)
			SetISA(prev)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: dots[%d] = %d, want %d", isa, i, got[i], want[i])
				}
			}
		}
	})
}

func BenchmarkMWQ(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 512, 2048
	base, planes := randMWQ(rng, rows, cols, 2, 2)
	x := randI8(rng, cols, false)
	sums := make([]int32, cols/MWQGroup)
	MWQGroupSums(sums, x)
	out := make([]float32, rows)
	for _, bits := range []int{2, 3, 4} {
		np := bits - 2
		var genNs float64
		for _, isa := range []ISA{Generic, AVX2, AVX512} {
			if !Supported(isa) {
				continue
			}
			b.Run(isa.String()+"/bits"+string(rune('0'+bits)), func(b *testing.B) {
				prev, _ := SetISA(isa)
				defer SetISA(prev)
				bytes := len(base) + np*len(planes[0])
				b.SetBytes(int64(bytes))
				for b.Loop() {
					GemvMWQ(out, base, 2, planes[:np], x, sums, 1)
				}
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				if isa == Generic {
					genNs = ns
				} else if genNs > 0 {
					b.ReportMetric(genNs/ns, "x_generic")
				}
			})
		}
	}
}

// TestGemvMWQNoAlloc: the decode loop allocates nothing per token, so neither may the
// product (its dot scratch lives on the stack).
func TestGemvMWQNoAlloc(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base, planes := randMWQ(rng, 64, 256, 2, 2)
	x := randI8(rng, 256, false)
	sums := make([]int32, 2)
	MWQGroupSums(sums, x)
	out := make([]float32, 64)
	eachISA(t, func(t *testing.T, isa ISA) {
		if a := testing.AllocsPerRun(20, func() { GemvMWQ(out, base, 2, planes, x, sums, 1) }); a != 0 {
			t.Errorf("GemvMWQ allocates %.1f times per call", a)
		}
	})
}
