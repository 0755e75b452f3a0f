//go:build arm64 && !purego

package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// Exported int8 kernels (GemvI8, GemmI8, GemvA8W4, GemmA8W4) on every supported ISA —
// on arm64: generic and NEON, whose form (SDOT or SMULL) follows HasDotProd — compared
// bit for bit with the generic twins; plus fuzz targets that run both NEON forms directly.

func TestNEONDispatchSelected(t *testing.T) {
	if !Supported(NEON) {
		t.Fatal("arm64 build without purego must support NEON")
	}
	if best() != NEON {
		t.Fatalf("best() = %v on arm64, want neon", best())
	}
}

func randScales(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.ExpFloat64() * 1e-3)
	}
	return s
}

// int8Case runs all four exported int8 kernels on one shape and compares with the twins.
func int8Case(t *testing.T, rng *rand.Rand, rows, cols, ntok, mode int) {
	t.Helper()
	w := make([]int8, rows*cols)
	fillI8(rng, w, mode)
	x := make([]int8, ntok*cols)
	fillI8(rng, x, []int{0, 1, 3, 2}[mode])
	ws, xs := randScales(rng, rows), randScales(rng, ntok)
	rs := make([]int32, rows)
	RowSumsI8(rs, w, cols)
	codes, tables := randA8W4(rng, rows, cols, mode)
	rs4 := make([]int32, rows)
	RowSumsA8W4(rs4, codes, tables, cols)

	check := func(name string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s %s %dx%d ntok %d mode %d: out[%d] = %v, want %v", Active(), name, rows, cols, ntok, mode, i, got[i], want[i])
			}
		}
	}
	got, want := make([]float32, rows), make([]float32, rows)
	GemvI8(got, w, ws, rs, x[:cols], xs[0])
	gemvI8Generic(want, w, ws, rs, x[:cols], xs[0])
	check("GemvI8", got, want)
	GemvA8W4(got, codes, tables, ws, rs4, x[:cols], xs[0])
	gemvA8W4Generic(want, codes, tables, ws, rs4, x[:cols], xs[0])
	check("GemvA8W4", got, want)

	gotm, wantm := make([]float32, ntok*rows), make([]float32, ntok*rows)
	GemmI8(gotm, rows, w, ws, rs, x, xs)
	gemmI8Generic(wantm, rows, w, ws, rs, x, xs)
	check("GemmI8", gotm, wantm)
	GemmA8W4(gotm, rows, codes, tables, ws, rs4, x, xs)
	gemmA8W4Generic(wantm, rows, codes, tables, ws, rs4, x, xs)
	check("GemmA8W4", gotm, wantm)
}

func TestNEONInt8Exported(t *testing.T) {
	for i := Generic; i < numISA; i++ {
		if !Supported(i) {
			t.Logf("%s: not supported here, skipped", i)
			continue
		}
		prev, _ := SetISA(i)
		rng := rand.New(rand.NewSource(int64(i) + 10))
		for _, sh := range neonShapes {
			for _, ntok := range []int{1, 3, 4, 6, 9} {
				int8Case(t, rng, sh[0], sh[1], ntok, rng.Intn(4))
			}
		}
		SetISA(prev)
	}
}

// fuzzInt8Both checks the int32 kernels of both NEON forms the CPU has (the exported
// functions pick one form by CPU) against the generic dot products.
func fuzzInt8Both(t *testing.T, seed int64, rows, cols, ntok int) {
	rng := rand.New(rand.NewSource(seed))
	mode := int(uint64(seed) % 4)
	w := make([]int8, rows*cols)
	fillI8(rng, w, mode)
	x := make([]int8, ntok*cols)
	fillI8(rng, x, int(uint64(seed)/4%4))
	codes, tables := randA8W4(rng, rows, cols, mode)
	want := make([]int32, ntok*rows)
	want4 := make([]int32, ntok*rows)
	cb, tb := cols/2, a8w4Groups(cols)*16
	for tk := 0; tk < ntok; tk++ {
		xt := x[tk*cols : (tk+1)*cols]
		for r := 0; r < rows; r++ {
			want[tk*rows+r] = dotI8Generic(w[r*cols:(r+1)*cols], xt)
			want4[tk*rows+r] = dotA8W4Generic(codes[r*cb:(r+1)*cb], tables[r*tb:(r+1)*tb], xt)
		}
	}
	for _, v := range neonVariants {
		if v.dotprod && !HasDotProd() {
			continue
		}
		got := make([]int32, ntok*rows)
		i8GemmDotsArm64(got, w, x, rows, cols, ntok, v.dotprod)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s gemm %dx%d ntok %d: [%d] = %d, want %d", v.name, rows, cols, ntok, i, got[i], want[i])
			}
		}
		i8DotsArm64(got[:rows], w, x[:cols], v.dotprod)
		for i := range rows {
			if got[i] != want[i] {
				t.Fatalf("%s gemv %dx%d: [%d] = %d, want %d", v.name, rows, cols, i, got[i], want[i])
			}
		}
		a8w4DotsArm64(got[:rows], codes, tables, x[:cols], v.dotprod)
		for i := range rows {
			if got[i] != want4[i] {
				t.Fatalf("%s a8w4 %dx%d: [%d] = %d, want %d", v.name, rows, cols, i, got[i], want4[i])
			}
		}
		a8w4GemmDotsArm64(got, codes, tables, x, rows, cols, ntok, v.dotprod)
		for i := range want4 {
			if got[i] != want4[i] {
				t.Fatalf("%s a8w4 gemm %dx%d ntok %d: [%d] = %d, want %d", v.name, rows, cols, ntok, i, got[i], want4[i])
			}
		}
	}
}

func FuzzNEONInt8(f *testing.F) {
	f.Add(int64(1), uint8(1), uint8(1), uint8(1))
	f.Add(int64(2), uint8(5), uint8(4), uint8(7))
	f.Add(int64(7), uint8(9), uint8(13), uint8(4))
	f.Add(int64(-3), uint8(16), uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, seed int64, rows, blocks, ntok uint8) {
		fuzzInt8Both(t, seed, int(rows%24)+1, (int(blocks%40)+1)*32, int(ntok%9)+1)
	})
}

func TestNEONInt8Allocs(t *testing.T) {
	prev, err := SetISA(NEON)
	if err != nil {
		t.Fatal(err)
	}
	defer SetISA(prev)
	const rows, cols, ntok = 13, 256, 5
	rng := rand.New(rand.NewSource(3))
	w := make([]int8, rows*cols)
	x := make([]int8, ntok*cols)
	fillI8(rng, w, 0)
	fillI8(rng, x, 0)
	codes, tables := randA8W4(rng, rows, cols, 0)
	ws, xs := randScales(rng, rows), randScales(rng, ntok)
	rs := make([]int32, rows)
	out := make([]float32, ntok*rows)
	n := testing.AllocsPerRun(20, func() {
		GemvI8(out[:rows], w, ws, rs, x[:cols], xs[0])
		GemmI8(out, rows, w, ws, rs, x, xs)
		GemvA8W4(out[:rows], codes, tables, ws, rs, x[:cols], xs[0])
		GemmA8W4(out, rows, codes, tables, ws, rs, x, xs)
	})
	if n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}
