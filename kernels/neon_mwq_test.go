//go:build arm64 && !purego

package kernels

import (
	"math/rand/v2"
	"testing"
)

// mwqCase makes n blocks of stride bytes (header off, nb planes) and cols activations:
// mode "random", "ones" (every bit set), "zeros", or "extreme" (bits set, activations
// -128/127/-127, the largest sums).
func mwqCase(rng *rand.Rand, n, stride, cols int, mode string) ([]byte, []int8) {
	blocks := make([]byte, n*stride)
	for i := range blocks {
		switch mode {
		case "ones", "extreme":
			blocks[i] = 0xff
		case "random":
			blocks[i] = byte(rng.Uint32())
		}
	}
	return blocks, randI8(rng, cols, mode == "extreme")
}

// TestNEONMWQDots runs both NEON forms directly (not through the CPU's choice), so that a
// dotprod CPU also checks the widening form: base widths 1..7, each plane of a block at
// its own place, group counts 1..16 with block counts that do and do not wrap them, padded
// strides, and a guard after dots.
func TestNEONMWQDots(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, v := range neonVariants {
		if v.skip(t) {
			continue
		}
		for _, cols := range []int{128, 256, 640, 2048} {
			for _, nb := range []int{1, 2, 3, 5, 7} {
				for _, n := range []int{1, 2, 3, 7, 16, 33} {
					for _, mode := range []string{"random", "ones", "zeros", "extreme"} {
						off := 4
						if nb == 1 {
							off = 2
						}
						stride := off + nb*16 + rng.IntN(5)
						blocks, x := mwqCase(rng, n, stride, cols, mode)
						want := make([]int32, n)
						mwqDotsGeneric(want, blocks, stride, off, nb, x)
						got := make([]int32, n+1)
						got[n] = 12345
						mwqDotsArm64(got[:n], blocks, stride, off, nb, x, v.dotprod)
						if got[n] != 12345 {
							t.Fatalf("%s cols %d nb %d n %d: wrote past dots", v.name, cols, nb, n)
						}
						for i := range want {
							if got[i] != want[i] {
								t.Fatalf("%s cols %d nb %d n %d %s: dots[%d] = %d, want %d", v.name, cols, nb, n, mode, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// TestNEONMWQOneBit: a single set bit selects a single activation, for every weight k of
// a 128-group and every plane j, so each TBL index, lane bit and plane offset is checked
// on its own (dots = 2^j * x[k]).
func TestNEONMWQOneBit(t *testing.T) {
	x := make([]int8, MWQGroup)
	for k := range x {
		x[k] = int8(k%127 + 1)
	}
	const nb = 3
	stride := 4 + nb*16
	for _, v := range neonVariants {
		if v.skip(t) {
			continue
		}
		for j := range nb {
			for k := range MWQGroup {
				blocks := make([]byte, stride)
				blocks[4+16*j+k/8] = 1 << (k % 8)
				dots := []int32{0}
				mwqDotsArm64(dots, blocks, stride, 4, nb, x, v.dotprod)
				if want := int32(x[k]) << j; dots[0] != want {
					t.Fatalf("%s: bit %d of plane %d: %d, want %d", v.name, k, j, dots[0], want)
				}
			}
		}
	}
}

// FuzzNEONMWQDots compares both NEON forms with the twin on fuzzer-chosen planes,
// activations, widths, headers and strides.
func FuzzNEONMWQDots(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{0xff, 0x80}, uint8(2), uint8(3), uint8(0))
	f.Add(make([]byte, 300), []byte{0x80}, uint8(6), uint8(39), uint8(7))
	f.Fuzz(func(t *testing.T, bits, xs []byte, nb, n, pad uint8) {
		nbi := int(nb%7) + 1
		cnt := int(n%40) + 1
		cols := MWQGroup * (1 + int(n)%5)
		off := 2 + 2*int(pad&1)
		stride := off + nbi*16 + int(pad>>1)%9
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
		want := make([]int32, cnt)
		mwqDotsGeneric(want, blocks, stride, off, nbi, x)
		for _, v := range neonVariants {
			if v.dotprod && !HasDotProd() {
				continue
			}
			got := make([]int32, cnt)
			mwqDotsArm64(got, blocks, stride, off, nbi, x, v.dotprod)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: dots[%d] = %d, want %d", v.name, i, got[i], want[i])
				}
			}
		}
	})
}
