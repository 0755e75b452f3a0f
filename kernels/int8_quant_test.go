package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// QuantizeI8 on every path against quantizeI8Generic: same scale bits, same int8 values.

func checkQuantizeI8(t *testing.T, what string, x []float32) {
	t.Helper()
	want := make([]int8, len(x))
	ws := quantizeI8Generic(want, x)
	got := make([]int8, len(x)+1)
	got[len(x)] = 99 // must not be written
	for i := range got[:len(x)] {
		got[i] = 55
	}
	gs := QuantizeI8(got[:len(x)], x)
	if math.Float32bits(gs) != math.Float32bits(ws) {
		t.Fatalf("%s n=%d: scale %v, generic %v", what, len(x), gs, ws)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s n=%d: dst[%d] = %d, generic %d (x = %v)", what, len(x), i, got[i], want[i], x[i])
		}
	}
	if got[len(x)] != 99 {
		t.Fatalf("%s n=%d: wrote past len(x)", what, len(x))
	}
}

func TestQuantizeI8Paths(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 31))
	lens := []int{0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 200, 4096 + 37}
	allISAs(t, func(t *testing.T) {
		for _, n := range lens {
			x := randVec(r, n)
			checkQuantizeI8(t, "random", x)
			// ties: with max|x| = 127 the multiplier is exactly 1, so x itself is rounded
			for i := range x {
				k := float32(r.IntN(254) - 127)
				switch r.IntN(4) {
				case 0:
					x[i] = k + 0.5
				case 1:
					x[i] = math.Nextafter32(k+0.5, 200)
				case 2:
					x[i] = math.Nextafter32(k+0.5, -200)
				default:
					x[i] = -(k + 0.5)
				}
				x[i] = max(-127, min(127, x[i]))
			}
			if n > 0 {
				x[r.IntN(n)] = 127
			}
			checkQuantizeI8(t, "ties", x)
			// NaNs, infinities, -0, a subnormal maximum (127/max overflows to +Inf)
			for i := range x {
				switch r.IntN(6) {
				case 0:
					x[i] = float32(math.NaN())
				case 1:
					x[i] = float32(math.Copysign(0, -1))
				case 2:
					x[i] = 1e-45
				case 3:
					x[i] = -1e-45
				default:
					x[i] = 0
				}
			}
			checkQuantizeI8(t, "subnormal+NaN", x)
			if n > 0 {
				x[r.IntN(n)] = float32(math.Inf(1 - 2*r.IntN(2)))
			}
			checkQuantizeI8(t, "inf", x)
			clear(x)
			checkQuantizeI8(t, "zeros", x)
		}
	})
}

func FuzzQuantizeI8(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f}, uint16(70))
	f.Add([]byte{0xff, 0xff, 0xc0, 0x7f, 1, 0, 0, 0}, uint16(65))
	f.Fuzz(func(t *testing.T, data []byte, n uint16) {
		x := make([]float32, int(n)%300)
		for i := range x {
			var b [4]byte
			for k := range b {
				if len(data) > 0 {
					b[k] = data[(4*i+k)%len(data)]
				}
			}
			x[i] = math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
		}
		allISAs(t, func(t *testing.T) { checkQuantizeI8(t, "fuzz", x) })
	})
}

// BenchmarkQuantizeI8: one token of 4096 values (an FFN input); x_generic = the generic
// twin's time / this path's (same run).
func BenchmarkQuantizeI8(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(32, 32)), 4096)
	dst := make([]int8, len(x))
	benchISAs(b, func(b *testing.B) {
		gen := timeIt(func() { quantizeI8Generic(dst, x) }, 20*time.Millisecond)
		b.SetBytes(int64(4 * len(x)))
		b.ResetTimer()
		for b.Loop() {
			QuantizeI8(dst, x)
		}
		b.ReportMetric(gen/(float64(b.Elapsed().Nanoseconds())/float64(b.N)), "x_generic")
	})
}
