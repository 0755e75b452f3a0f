package kernels

import (
	"encoding/binary"
	"math"
	"testing"
)

// fuzzFloats maps bytes to floats: each int16 becomes v/64 in [-512, 512), except
// -32768 -> -inf and 32767 -> NaN, so the fuzzer reaches masks and NaN rows without
// producing overflowing sums.
func fuzzFloats(b []byte) []float32 {
	x := make([]float32, len(b)/2)
	for i := range x {
		v := int16(binary.LittleEndian.Uint16(b[2*i:]))
		switch v {
		case math.MinInt16:
			x[i] = float32(math.Inf(-1))
		case math.MaxInt16:
			x[i] = float32(math.NaN())
		default:
			x[i] = float32(v) / 64
		}
	}
	return x
}

func floatFuzzSeeds(f *testing.F) {
	for _, n := range []int{0, 1, 7, 15, 17, 33, 100} {
		b := make([]byte, 2*n)
		for i := range b {
			b[i] = byte(i*37 + n)
		}
		f.Add(b)
	}
	f.Add([]byte{0x00, 0x80, 0x00, 0x80, 0x00, 0x80}) // all -inf
	f.Add([]byte{0x00, 0x80, 0x40, 0x00, 0xff, 0x7f}) // -inf, 1, NaN
}

// finite reports whether every float is finite (the dot tests leave inf/NaN to
// TestFloatDotsSpecial).
func finite(x []float32) bool {
	for _, v := range x {
		if math.IsInf(float64(v), 0) || v != v {
			return false
		}
	}
	return true
}

func FuzzDot(f *testing.F) {
	floatFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		x := fuzzFloats(data)
		if !finite(x) {
			return
		}
		n := len(x) / 2
		a, b := x[:n], x[n:2*n]
		a64 := make([]float64, n)
		h := make([]byte, 2*n)
		for i, v := range a {
			a64[i] = float64(v)
		}
		eachISA(t, func(t *testing.T, isa ISA) {
			checkDot(t, "Dot", Dot(a, b), a64, b)
			for i, v := range a {
				q := F32ToF16(v)
				binary.LittleEndian.PutUint16(h[2*i:], q)
				a64[i] = float64(F16ToF32(q))
			}
			checkDot(t, "DotF16", DotF16(h, b), a64, b)
			for i, v := range a {
				a64[i] = float64(v)
			}
		})
	})
}

func FuzzSoftmax(f *testing.F) {
	floatFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		x := fuzzFloats(data)
		want := softmaxRef(x)
		eachISA(t, func(t *testing.T, isa ISA) {
			for _, sf := range softmaxFuncs {
				y := append([]float32(nil), x...)
				sf.f(y)
				for i := range y {
					if !smClose(y[i], want[i]) {
						t.Fatalf("%s(%v)[%d] = %v, want %v", sf.name, x, i, y[i], want[i])
					}
				}
			}
		})
	})
}

func FuzzSiLUMulAxpy(f *testing.F) {
	floatFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		x := fuzzFloats(data)
		n := len(x) / 2
		g, u := x[:n], x[n:2*n]
		wantS := append([]float32(nil), g...)
		siluMulGeneric(wantS, u)
		wantA := append([]float32(nil), u...)
		axpyGeneric(wantA, 0.75, g)
		eachISA(t, func(t *testing.T, isa ISA) {
			s := append([]float32(nil), g...)
			SiLUMul(s, u)
			a := append([]float32(nil), u...)
			Axpy(a, 0.75, g)
			for i := range s {
				if !siluClose(s[i], wantS[i], u[i]) {
					t.Fatalf("SiLUMul(%v, %v) = %v, want %v", g[i], u[i], s[i], wantS[i])
				}
				if math.Float32bits(a[i]) != math.Float32bits(wantA[i]) && !(a[i] != a[i] && wantA[i] != wantA[i]) {
					t.Fatalf("Axpy [%d] = %v, want %v", i, a[i], wantA[i])
				}
			}
		})
	})
}
