//go:build !purego

package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestUnpackA8W4G: the AVX-512 unpacking from the stored pairs writes the same bytes
// (weights and zero padding) as the table unpacking on the expanded tables.
func TestUnpackA8W4G(t *testing.T) {
	if !Supported(AVX512) {
		t.Skip("no AVX-512 VNNI")
	}
	r := rand.New(rand.NewPCG(25, 25))
	for _, cols := range gCols {
		for mode := 0; mode < 4; mode++ {
			const rows = 7
			c := newGCase(r, rows, cols, 1, mode)
			tab := c.tables()
			cb, tb, gb := cols/2, a8w4Groups(cols)*16, a8w4Groups(cols)*2
			ps := a8w4Groups(cols)*128 + 64
			kc, _, _ := a4Masks(cols)
			want := make([]int8, rows*ps)
			got := make([]int8, rows*ps)
			for i := range got {
				want[i], got[i] = 0x55, 0x55
			}
			unpackA8W4AVX512(&want[0], ps, &c.codes[0], cb, &tab[0], tb, cols, rows, kc, 0, 0)
			unpackA8W4GAVX512(&got[0], ps, &c.codes[0], cb, &c.groups[0], gb, &a8w4LUT[0], cols, rows, kc, 0, 0)
			if i := slices.Compare(got, want); i != 0 {
				for k := range got {
					if got[k] != want[k] {
						t.Fatalf("cols %d mode %d: byte %d (row %d, offset %d) = %d, table unpacking %d", cols, mode, k, k/ps, k%ps, got[k], want[k])
					}
				}
			}
		}
	}
}
