//go:build arm64 && !purego

package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestNEONGGML compares both NEON forms (SDOT and SMULL/SADALP) of the Q8_0/Q4_0 GEMV and
// GEMM with the pure-Go twins bit for bit. (ggml_test.go's ISA loop covers only the form
// HasDotProd selects; this test covers the other one too on a dotprod CPU.)
func TestNEONGGML(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, v := range neonVariants {
		if v.skip(t) {
			continue
		}
		for _, sh := range ggmlShapes {
			for _, extreme := range []bool{false, true} {
				for _, q4 := range []bool{false, true} {
					k := neonGGML{q4: q4, sdot: v.dotprod}
					ntok := 1 + r.IntN(6)
					xq := make([]byte, 0, ntok*Q8ActBytes(sh.cols))
					for range ntok {
						xq = append(xq, randAct(r, sh.cols, extreme)...)
					}
					var w []byte
					if q4 {
						w = randQ4Weights(r, sh.rows, sh.cols, extreme)
					} else {
						w = randQ8Weights(r, sh.rows, sh.cols, extreme)
					}
					want := make([]float32, ntok*sh.rows)
					if q4 {
						gemmQ4_0Generic(want, sh.rows, w, sh.cols, xq, ntok)
					} else {
						gemmQ8_0Generic(want, sh.rows, w, sh.cols, xq, ntok)
					}
					got := make([]float32, sh.rows+1)
					got[sh.rows] = 42
					k.gemv(got[:sh.rows], w, sh.cols, xq[:Q8ActBytes(sh.cols)])
					if got[sh.rows] != 42 {
						t.Fatalf("%s q4=%v %dx%d: gemv wrote past out", v.name, q4, sh.rows, sh.cols)
					}
					if i := sameBits(got[:sh.rows], want[:sh.rows]); i >= 0 {
						t.Fatalf("%s gemv q4=%v %dx%d extreme=%v: row %d got %v want %v", v.name, q4, sh.rows, sh.cols, extreme, i, got[i], want[i])
					}
					gotm := make([]float32, ntok*sh.rows)
					k.gemm(gotm, sh.rows, w, sh.cols, xq, ntok)
					if i := sameBits(gotm, want); i >= 0 {
						t.Fatalf("%s gemm q4=%v %dx%d extreme=%v: token %d row %d got %v want %v", v.name, q4, sh.rows, sh.cols, extreme, i/sh.rows, i%sh.rows, gotm[i], want[i])
					}
				}
			}
		}
	}
}

// FuzzNEONGGML runs both NEON forms of the Q8_0/Q4_0 GEMV and GEMM directly against the twins
// (FuzzGemvQ8_0/Q4_0 in ggml_test.go reach only the form the CPU selects).
func FuzzNEONGGML(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(2), false)
	f.Add(uint64(2), uint8(17), uint8(129), true)
	f.Add(uint64(5), uint8(1), uint8(1), true)
	f.Fuzz(func(t *testing.T, seed uint64, rows8, blocks uint8, q4 bool) {
		r := rand.New(rand.NewPCG(seed, 11))
		rows, cols := int(rows8%40)+1, (int(blocks%140)+1)*QK
		xq := randAct(r, cols, seed%3 == 0)
		var w []byte
		want := make([]float32, rows)
		if q4 {
			w = randQ4Weights(r, rows, cols, seed%5 == 0)
			gemvQ4_0Generic(want, w, cols, xq)
		} else {
			w = randQ8Weights(r, rows, cols, seed%5 == 0)
			gemvQ8_0Generic(want, w, cols, xq)
		}
		for _, v := range neonVariants {
			if v.dotprod && !HasDotProd() {
				continue
			}
			got := make([]float32, rows)
			neonGGML{q4: q4, sdot: v.dotprod}.gemv(got, w, cols, xq)
			if i := sameBits(got, want); i >= 0 {
				t.Fatalf("%s q4=%v %dx%d: row %d got %v want %v", v.name, q4, rows, cols, i, got[i], want[i])
			}
			// GEMM: the same activation twice plus a fresh one; token 0 and 1 must equal the GEMV.
			xq3 := append(append(append([]byte(nil), xq...), xq...), randAct(r, cols, false)...)
			gotm := make([]float32, 3*rows)
			neonGGML{q4: q4, sdot: v.dotprod}.gemm(gotm, rows, w, cols, xq3, 3)
			want3 := make([]float32, 3*rows)
			if q4 {
				gemmQ4_0Generic(want3, rows, w, cols, xq3, 3)
			} else {
				gemmQ8_0Generic(want3, rows, w, cols, xq3, 3)
			}
			if i := sameBits(gotm, want3); i >= 0 || sameBits(gotm[rows:2*rows], want) >= 0 {
				t.Fatalf("%s gemm q4=%v %dx%d: [%d] got %v want %v", v.name, q4, rows, cols, i, gotm, want3)
			}
		}
	})
}
