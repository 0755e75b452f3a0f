//go:build arm64 && !purego

package kernels

import (
	"math/rand"
	"testing"
)

// Direct tests of the NEON int8 kernels against scalar int32 loops: exact, on random
// inputs, edge shapes and extremes, for the SDOT form (when the CPU has dotprod) and the
// SMULL/SADALP form (always). The exported kernels are additionally compared with their
// generic twins for every ISA by the K1/K2 tests and by neon_dispatch_test.go.

type neonVariant struct {
	name    string
	dotprod bool
}

var neonVariants = []neonVariant{{"sdot", true}, {"smull", false}}

func (v neonVariant) skip(t *testing.T) bool {
	if v.dotprod && !HasDotProd() {
		t.Logf("%s: CPU lacks dotprod, skipped", v.name)
		return true
	}
	return false
}

// fillI8 fills b with random int8, or with extremes (-128/127 mixes, all -128) by mode.
func fillI8(rng *rand.Rand, b []int8, mode int) {
	for i := range b {
		switch mode {
		case 1:
			b[i] = -128
		case 2:
			b[i] = []int8{-128, 127}[rng.Intn(2)]
		case 3:
			b[i] = 127
		default:
			b[i] = int8(rng.Intn(256) - 128)
		}
	}
}

func refI8Dots(dst []int32, w, x []int8) {
	cols := len(x)
	for r := range dst {
		var s int32
		for k, xv := range x {
			s += int32(w[r*cols+k]) * int32(xv)
		}
		dst[r] = s
	}
}

// neonShapes are (rows, cols) pairs: every row-tail count, one row, long rows.
var neonShapes = [][2]int{{1, 32}, {2, 64}, {3, 32}, {4, 32}, {5, 96}, {7, 128}, {8, 256}, {9, 32}, {13, 4096}, {16, 160}, {33, 512}}

func TestNEONI8Dots(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, v := range neonVariants {
		if v.skip(t) {
			continue
		}
		f := map[bool]func([]int32, []int8, []int8){true: i8DotsSDOT, false: i8DotsNEON}[v.dotprod]
		for _, sh := range neonShapes {
			for mode := 0; mode < 4; mode++ {
				rows, cols := sh[0], sh[1]
				w := make([]int8, rows*cols)
				x := make([]int8, cols)
				fillI8(rng, w, mode)
				fillI8(rng, x, mode)
				want := make([]int32, rows)
				refI8Dots(want, w, x)
				got := make([]int32, rows+1)
				got[rows] = 12345 // guard
				f(got[:rows], w, x)
				if got[rows] != 12345 {
					t.Fatalf("%s %dx%d: wrote past dst", v.name, rows, cols)
				}
				for r := range want {
					if got[r] != want[r] {
						t.Fatalf("%s %dx%d mode %d: row %d = %d, want %d", v.name, rows, cols, mode, r, got[r], want[r])
					}
				}
			}
		}
	}
}

func TestNEONI8GemmDots(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, v := range neonVariants {
		if v.skip(t) {
			continue
		}
		for _, sh := range neonShapes {
			for _, ntok := range []int{1, 2, 3, 4, 5, 8, 11} {
				mode := rng.Intn(4)
				rows, cols := sh[0], sh[1]
				w := make([]int8, rows*cols)
				x := make([]int8, ntok*cols)
				fillI8(rng, w, mode)
				fillI8(rng, x, mode)
				want := make([]int32, ntok*rows)
				for tk := 0; tk < ntok; tk++ {
					refI8Dots(want[tk*rows:(tk+1)*rows], w, x[tk*cols:(tk+1)*cols])
				}
				got := make([]int32, ntok*rows+1)
				got[ntok*rows] = 12345
				i8GemmDotsArm64(got[:ntok*rows], w, x, rows, cols, ntok, v.dotprod)
				if got[ntok*rows] != 12345 {
					t.Fatalf("%s %dx%d ntok %d: wrote past dst", v.name, rows, cols, ntok)
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s %dx%d ntok %d mode %d: token %d row %d = %d, want %d", v.name, rows, cols, ntok, mode, i/rows, i%rows, got[i], want[i])
					}
				}
			}
		}
	}
}
