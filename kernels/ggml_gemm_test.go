package kernels

import (
	"math/rand/v2"
	"testing"
)

// ggmlGemmCase runs GemmQ8_0/GemmQ4_0 on the active path over rows x cols x ntok and
// compares every output bit for bit with the pure-Go twin of the GEMV (per token) and
// with GemvQ8_0/GemvQ4_0 of the same path. It returns false after reporting a mismatch.
func ggmlGemmCase(t *testing.T, r *rand.Rand, q4 bool, rows, cols, ntok int, extreme bool) bool {
	t.Helper()
	nb := cols / QK
	xb := nb * Q8_0Bytes
	xq := make([]byte, 0, ntok*xb)
	for k := 0; k < ntok; k++ {
		xq = append(xq, randAct(r, cols, extreme && k%2 == 0)...)
	}
	var w []byte
	if q4 {
		w = randQ4Weights(r, rows, cols, extreme)
	} else {
		w = randQ8Weights(r, rows, cols, extreme)
	}
	// Sentinels past the outputs catch stray (unmasked) stores.
	got := make([]float32, rows*ntok+17)
	for i := range got {
		got[i] = -7
	}
	if q4 {
		GemmQ4_0(got, rows, w, cols, xq, ntok)
	} else {
		GemmQ8_0(got, rows, w, cols, xq, ntok)
	}
	for i := rows * ntok; i < len(got); i++ {
		if got[i] != -7 {
			t.Errorf("q4=%v %dx%d ntok %d: wrote past the outputs at %d", q4, rows, cols, ntok, i)
			return false
		}
	}
	want := make([]float32, rows)
	gemv := make([]float32, rows)
	for k := 0; k < ntok; k++ {
		x := xq[k*xb : (k+1)*xb]
		if q4 {
			gemvQ4_0Generic(want, w, cols, x)
			GemvQ4_0(gemv, w, cols, x)
		} else {
			gemvQ8_0Generic(want, w, cols, x)
			GemvQ8_0(gemv, w, cols, x)
		}
		g := got[k*rows : (k+1)*rows]
		if i := sameBits(g, want); i >= 0 {
			t.Errorf("q4=%v %dx%d ntok %d extreme=%v: token %d row %d: got %v, generic twin %v", q4, rows, cols, ntok, extreme, k, i, g[i], want[i])
			return false
		}
		if i := sameBits(g, gemv); i >= 0 {
			t.Errorf("q4=%v %dx%d ntok %d: token %d row %d: got %v, GEMV %v", q4, rows, cols, ntok, k, i, g[i], gemv[i])
			return false
		}
	}
	return true
}

// TestGemmGGMLBlocked covers the blocked GEMM's edges on every ISA: rows that are not a
// multiple of the 4-row tile (and fewer than 4), 1..9 tokens and token counts around the
// 16-lane groups and 3-group tiles, one block, and extreme values.
func TestGemmGGMLBlocked(t *testing.T) {
	ggmlISAs(t, func(t *testing.T, isa ISA) {
		r := rand.New(rand.NewPCG(11, uint64(isa)))
		toks := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 50, 64, 97}
		rowsList := []int{1, 2, 3, 4, 5, 7, 8, 13, 17}
		for _, q4 := range []bool{false, true} {
			for _, ntok := range toks {
				for _, rows := range rowsList {
					cols := QK * (1 + r.IntN(5))
					if !ggmlGemmCase(t, r, q4, rows, cols, ntok, (ntok+rows)%3 == 0) {
						return
					}
				}
			}
			// One block; wide rows (4096+32 columns).
			for _, sh := range [][3]int{{9, 32, 33}, {6, 32, 1}, {5, 4096 + 32, 19}, {12, 1024, 48}} {
				if !ggmlGemmCase(t, r, q4, sh[0], sh[1], sh[2], false) || !ggmlGemmCase(t, r, q4, sh[0], sh[1], sh[2], true) {
					return
				}
			}
		}
	})
}

func FuzzGemmQ8_0(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(2), uint8(5))
	f.Add(uint64(2), uint8(17), uint8(9), uint8(49))
	f.Add(uint64(3), uint8(1), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, rows, blocks, ntok uint8) {
		fuzzGemmGGML(t, seed, int(rows%24)+1, int(blocks%40)+1, int(ntok%70)+1, false)
	})
}

func FuzzGemmQ4_0(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(2), uint8(5))
	f.Add(uint64(2), uint8(17), uint8(9), uint8(49))
	f.Add(uint64(3), uint8(1), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, rows, blocks, ntok uint8) {
		fuzzGemmGGML(t, seed, int(rows%24)+1, int(blocks%40)+1, int(ntok%70)+1, true)
	})
}

func fuzzGemmGGML(t *testing.T, seed uint64, rows, nb, ntok int, q4 bool) {
	for i := Generic; i < numISA; i++ {
		if !Supported(i) {
			continue
		}
		prev, _ := SetISA(i)
		ok := ggmlGemmCase(t, rand.New(rand.NewPCG(seed, 10)), q4, rows, nb*QK, ntok, seed%4 == 0)
		SetISA(prev)
		if !ok {
			t.Fatalf("%s failed", i)
		}
	}
}
