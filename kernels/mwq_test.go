package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
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
		for _, isa := range []ISA{Generic, AVX2, AVX512, NEON} {
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

// BenchmarkGemvMWQDRAM streams an out-of-cache MWQ matrix (2048 columns, b1 = 2, up to
// 2 planes; 256 MiB at 4 bits) and an A8W4 matrix of the same shape and about the same
// bytes, alternately in one loop, both in row chunks of 256 as the engine calls them,
// on each ISA. It reports each one's GB/s (bytes read: MWQ base + planes used; A8W4
// codes + tables) and pct_a8w4 = MWQ GB/s / A8W4 GB/s, the figure to compare across
// runs on a loaded machine, and l2_GB/s, the MWQ kernel on 256 rows that stay in L2
// (its speed when memory is not the limit). Best times of the loop (minTimer).
func BenchmarkGemvMWQDRAM(b *testing.B) {
	const cols = 2048
	G := cols / MWQGroup
	rows := (256 << 20) / (G * (MWQBaseBlockBytes(2) + 2*MWQPlaneBlockBytes))
	rows -= rows % 256
	rng := rand.New(rand.NewPCG(9, 10))
	base, planes := randMWQ(rng, rows, cols, 2, 2)
	x := randI8(rng, cols, false)
	sums := make([]int32, G)
	MWQGroupSums(sums, x)
	out := make([]float32, rows)
	l2base, l2planes := randMWQ(rng, 256, cols, 2, 2)
	a4 := newBenchMat(rows*(MWQBaseBlockBytes(2)+2*MWQPlaneBlockBytes)/(cols/2+16*a8w4Groups(cols)), cols, false, true)
	cb, tb := cols/2, a8w4Groups(cols)*16
	a4Bytes := float64(len(a4.codes) + len(a4.tables))
	bb := MWQBaseBlockBytes(2)
	pb := G * MWQPlaneBlockBytes
	for _, bits := range []int{2, 3, 4} {
		np := bits - 2
		mwqBytes := float64(len(base) + np*len(planes[0]))
		benchISAs(b, func(b *testing.B) {
			if Active() == Generic {
				b.Skip("generic: too slow for a 256 MiB matrix")
			}
			b.Run("bits"+string(rune('0'+bits)), func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var use [2][]byte
				var tm, ta minTimer
				for b.Loop() {
					ta.start()
					chunked(a4.rows, 256, func(r0, r1 int) {
						GemvA8W4(a4.out[r0:r1], a4.codes[r0*cb:r1*cb], a4.tables[r0*tb:r1*tb], a4.scale[r0:r1], a4.rowSum[r0:r1], a4.x, 0.01)
					})
					ta.stop()
					tm.start()
					chunked(rows, 256, func(r0, r1 int) {
						for p := 0; p < np; p++ {
							use[p] = planes[p][r0*pb : r1*pb]
						}
						GemvMWQ(out[r0:r1], base[r0*G*bb:r1*G*bb], 2, use[:np], x, sums, 0.01)
					})
					tm.stop()
				}
				// The same kernel on 256 rows (295 KiB at 4 bits, in L2): its speed
				// when memory is not the limit.
				var tl minTimer
				for range 50 {
					tl.start()
					GemvMWQ(out[:256], l2base, 2, l2planes[:np], x, sums, 0.01)
					tl.stop()
				}
				b.ReportMetric(float64(len(l2base)+np*len(l2planes[0]))/float64(tl.wall.Nanoseconds()), "l2_GB/s")
				mg := mwqBytes / float64(tm.wall.Nanoseconds())
				ag := a4Bytes / float64(ta.wall.Nanoseconds())
				b.ReportMetric(mg, "GB/s")
				b.ReportMetric(ag, "a8w4_GB/s")
				b.ReportMetric(100*mg/ag, "pct_a8w4")
			})
		})
	}
}

// sameF32 reports whether a and b have the same bits, or are both NaN (VCVTPH2PS quiets
// a signalling f16 NaN that the Go table keeps: the payload may differ, never NaN-ness).
func sameF32(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// TestGemvMWQShapes: every path gives the generic twin's bits over row counts around
// the step widths (fewer rows than a step, partial last steps, several chunks of the
// scratch), group counts that do and do not divide the step (x wrapped), base widths
// with a fused kernel (2, 5) and without (1, 3), every plane count, and extreme inputs:
// activations -128/127 with all-ones codes and planes (the int16 packing bounds of the
// kernels), or all-zero bits.
func TestGemvMWQShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	type shape struct{ rows, cols int }
	shapes := []shape{{1, 128}, {3, 640}, {7, 256}, {8, 128}, {15, 1024}, {16, 2048}, {17, 384},
		{33, 1536}, {100, 896}, {129, 2048}, {300, 1024}, {9, 14336}}
	if testing.Short() { // under qemu: the widest shapes only cost time
		shapes = shapes[:len(shapes)-3]
	}
	for _, sh := range shapes {
		for _, b1 := range []int{1, 2, 3, 5} {
			for _, mode := range []string{"random", "extreme", "zeros"} {
				np := min(3, 8-b1)
				base, planes := randMWQ(rng, sh.rows, sh.cols, b1, np)
				x := randI8(rng, sh.cols, mode == "extreme")
				if mode != "random" {
					fill := byte(0xff)
					if mode == "zeros" {
						fill = 0
					}
					bb := MWQBaseBlockBytes(b1)
					for i := 0; i < len(base); i += bb {
						for k := 4; k < bb; k++ {
							base[i+k] = fill
						}
					}
					for _, pl := range planes {
						for i := 0; i < len(pl); i += MWQPlaneBlockBytes {
							for k := 2; k < MWQPlaneBlockBytes; k++ {
								pl[i+k] = fill
							}
						}
					}
				}
				sums := make([]int32, sh.cols/MWQGroup)
				MWQGroupSums(sums, x)
				for p := 0; p <= np; p++ {
					want := make([]float32, sh.rows)
					gemvMWQGeneric(want, base, b1, planes[:p], x, sums, 0.003)
					if mode == "random" && p == np && sh.cols <= 2048 {
						for r := range want {
							ref := mwqRefRow(base, b1, planes[:p], r, x) * 0.003
							if d := math.Abs(float64(want[r]) - ref); d > 1e-4*(math.Abs(ref)+1) {
								t.Fatalf("generic %v b1 %d np %d row %d: %v, float64 reference %v", sh, b1, p, r, want[r], ref)
							}
						}
					}
					eachISAQuiet(func(isa ISA) {
						got := make([]float32, sh.rows+1)
						got[sh.rows] = 42
						GemvMWQ(got[:sh.rows], base, b1, planes[:p], x, sums, 0.003)
						for r := range want {
							if !sameF32(got[r], want[r]) {
								t.Fatalf("%s %v b1 %d np %d %s: row %d = %v, generic %v", isa, sh, b1, p, mode, r, got[r], want[r])
							}
						}
						if got[sh.rows] != 42 {
							t.Fatalf("%s %v: wrote past len(out)", isa, sh)
						}
					})
				}
			}
		}
	}
}

// eachISAQuiet runs f with every supported path active (no subtests: for loops that
// would create thousands).
func eachISAQuiet(f func(isa ISA)) {
	prev := Active()
	defer SetISA(prev)
	for i := Generic; i < numISA; i++ {
		if _, err := SetISA(i); err != nil {
			continue
		}
		f(i)
	}
}

// FuzzGemvMWQ compares every path with the generic twin on fuzzer-chosen bytes (scales
// included: infinities, NaN and subnormal f16 values) and shapes.
func FuzzGemvMWQ(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0x3c, 0x00}, []byte{0x80, 0x7f}, uint8(17), uint8(3), uint8(2), uint8(2))
	f.Add(make([]byte, 64), []byte{0x01}, uint8(16), uint8(16), uint8(5), uint8(3))
	f.Add([]byte{0xff, 0x7c, 0x01, 0x00}, []byte{0xff}, uint8(40), uint8(5), uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, data, xs []byte, rows, groups, b1, np uint8) {
		R := int(rows%70) + 1
		G := int(groups%20) + 1
		B := []int{1, 2, 3, 5}[b1%4]
		P := int(np) % (9 - B)
		P = min(P, 3)
		fill := func(n int, salt byte) []byte {
			b := make([]byte, n)
			for i := range b {
				if len(data) > 0 {
					b[i] = data[(i*7+int(salt))%len(data)] ^ byte(i*13) ^ salt
				}
			}
			return b
		}
		base := fill(R*G*MWQBaseBlockBytes(B), 0)
		var planes [][]byte
		for p := 0; p < P; p++ {
			planes = append(planes, fill(R*G*MWQPlaneBlockBytes, byte(p+1)))
		}
		x := make([]int8, G*MWQGroup)
		for i := range x {
			if len(xs) > 0 {
				x[i] = int8(xs[i%len(xs)] + byte(i*3))
			}
		}
		sums := make([]int32, G)
		MWQGroupSums(sums, x)
		want := make([]float32, R)
		gemvMWQGeneric(want, base, B, planes, x, sums, 0.5)
		eachISAQuiet(func(isa ISA) {
			got := make([]float32, R)
			GemvMWQ(got, base, B, planes, x, sums, 0.5)
			for r := range want {
				if !sameF32(got[r], want[r]) {
					t.Fatalf("%s rows %d groups %d b1 %d np %d: row %d = %v, generic %v", isa, R, G, B, P, r, got[r], want[r])
				}
			}
		})
	})
}
