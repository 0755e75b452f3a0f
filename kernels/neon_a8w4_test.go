//go:build arm64 && !purego

package kernels

import (
	"math/rand"
	"testing"
)

// randA8W4 makes rows x cols codes (layout of dotA8W4Generic) and tables; mode 0 random,
// 1 codes 0 / tables -128, 2 codes 15 / tables 127, 3 codes 0 or 15 with extreme tables.
func randA8W4(rng *rand.Rand, rows, cols, mode int) ([]byte, []int8) {
	codes := make([]byte, rows*cols/2)
	tables := make([]int8, rows*a8w4Groups(cols)*16)
	switch mode {
	case 0:
		rng.Read(codes)
		fillI8(rng, tables, 0)
	case 1:
		fillI8(rng, tables, 1)
	case 2:
		for i := range codes {
			codes[i] = 0xff
		}
		fillI8(rng, tables, 3)
	default:
		for i := range codes {
			codes[i] = []byte{0x00, 0x0f, 0xf0, 0xff}[rng.Intn(4)]
		}
		fillI8(rng, tables, 2)
	}
	return codes, tables
}

func TestNEONA8W4Dots(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	shapes := append([][2]int{{1, 64}, {3, 96}, {4, 160}, {6, 224}, {5, 384}, {2, 4096}}, neonShapes...)
	for _, v := range neonVariants {
		if v.skip(t) {
			continue
		}
		for _, sh := range shapes {
			for mode := 0; mode < 4; mode++ {
				rows, cols := sh[0], sh[1]
				codes, tables := randA8W4(rng, rows, cols, mode)
				x := make([]int8, cols)
				fillI8(rng, x, []int{0, 1, 3, 2}[mode])
				cb, tb := cols/2, a8w4Groups(cols)*16
				got := make([]int32, rows+1)
				got[rows] = 12345
				a8w4DotsArm64(got[:rows], codes, tables, x, v.dotprod)
				if got[rows] != 12345 {
					t.Fatalf("%s %dx%d: wrote past dst", v.name, rows, cols)
				}
				for r := 0; r < rows; r++ {
					want := dotA8W4Generic(codes[r*cb:(r+1)*cb], tables[r*tb:(r+1)*tb], x)
					if got[r] != want {
						t.Fatalf("%s %dx%d mode %d: row %d = %d, want %d", v.name, rows, cols, mode, r, got[r], want)
					}
				}
			}
		}
	}
}

func TestNEONA8W4GemmDots(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	shapes := append([][2]int{{4, 64}, {4, 160}, {8, 224}, {5, 384}, {12, 4096}}, neonShapes...)
	for _, v := range neonVariants {
		if v.skip(t) {
			continue
		}
		for _, sh := range shapes {
			for _, ntok := range []int{1, 2, 3, 4, 5, 8} {
				mode := rng.Intn(4)
				rows, cols := sh[0], sh[1]
				codes, tables := randA8W4(rng, rows, cols, mode)
				x := make([]int8, ntok*cols)
				fillI8(rng, x, []int{0, 1, 3, 2}[mode])
				cb, tb := cols/2, a8w4Groups(cols)*16
				got := make([]int32, ntok*rows+1)
				got[ntok*rows] = 12345
				a8w4GemmDotsArm64(got[:ntok*rows], codes, tables, x, rows, cols, ntok, v.dotprod)
				if got[ntok*rows] != 12345 {
					t.Fatalf("%s %dx%d ntok %d: wrote past dst", v.name, rows, cols, ntok)
				}
				for tk := 0; tk < ntok; tk++ {
					for r := 0; r < rows; r++ {
						want := dotA8W4Generic(codes[r*cb:(r+1)*cb], tables[r*tb:(r+1)*tb], x[tk*cols:(tk+1)*cols])
						if g := got[tk*rows+r]; g != want {
							t.Fatalf("%s %dx%d ntok %d mode %d: token %d row %d = %d, want %d", v.name, rows, cols, ntok, mode, tk, r, g, want)
						}
					}
				}
			}
		}
	}
}
