//go:build !purego

package kernels

import (
	"math/rand/v2"
	"testing"
)

// setGGMLPerToken switches the AVX-512 GEMM to the per-token GEMV path (benchmarks) and
// returns the previous setting.
func setGGMLPerToken(on bool) bool {
	prev := ggmlPerTokenOnly
	ggmlPerTokenOnly = on
	return prev
}

// TestGemmGGMLTokenBlocks shrinks the budgets of the blocked AVX-512 and AVX-VNNI GEMMs (and AVX2) so
// that a call spans several token blocks (each prepared separately, the last one partial)
// several chunks of prepared weight rows (the last one overlapping the previous rows) and,
// on AVX-512, several chunks of blocks.
func TestGemmGGMLTokenBlocks(t *testing.T) {
	prevX, prevW := ggmlPrepBudget, ggmlWPrepBudget
	defer func() { ggmlPrepBudget, ggmlWPrepBudget = prevX, prevW }()
	for _, isa := range []ISA{AVX512, AVXVNNI, AVX2} {
		t.Run(isa.String(), func(t *testing.T) {
			if !Supported(isa) {
				t.Skipf("%s not supported", isa)
			}
			prev, _ := SetISA(isa)
			defer SetISA(prev)
			r := rand.New(rand.NewPCG(12, uint64(isa)))
			// Budgets of a few blocks also split the rows of the AVX-512 GEMM into chunks
			// of blocks (sums saved and resumed), including a shorter last chunk.
			for _, nb := range []int{4, 9} {
				for _, budget := range []int{1, 2 * nb * ggmlPrepBytes, 7 * nb * ggmlPrepBytes, 20 * 3 * ggmlPrepBytes} {
					for _, wbudget := range []int{1, 13 * nb * ggmlWPrepBytes, 1 << 20} {
						ggmlPrepBudget, ggmlWPrepBudget = budget, wbudget
						for _, ntok := range []int{1, 9, 17, 40, 100, 131} {
							for _, rows := range []int{3, 5, 11, 29} {
								for _, q4 := range []bool{false, true} {
									if !ggmlGemmCase(t, r, q4, rows, nb*QK, ntok, ntok%2 == 0) {
										return
									}
								}
							}
						}
					}
				}
			}
		})
	}
}
