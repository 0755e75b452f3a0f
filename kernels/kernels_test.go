package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func dot64(a []float64, b []float32) float64 {
	var s float64
	for i := range a {
		s += a[i] * float64(b[i])
	}
	return s
}

func approx(t *testing.T, what string, got float32, want float64, tol float64) {
	t.Helper()
	if d := math.Abs(float64(got) - want); d > tol*(1+math.Abs(want)) {
		t.Errorf("%s: got %v want %v (diff %g)", what, got, want, d)
	}
}

// TestHalfTable checks every binary16 bit pattern against an independent decoder.
func TestHalfTable(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		want := float16.Frombits(uint16(i)).Float32()
		got := F16ToF32(uint16(i))
		if math.Float32bits(got) != math.Float32bits(want) && !(want != want && got != got) {
			t.Fatalf("f16 %#04x: got %v want %v", i, got, want)
		}
	}
}

// TestF32ToF16 checks rounding (normal, subnormal, overflow, ties) against x448/float16.
func TestF32ToF16(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float32{0, -0, 1, -1, 65504, 65520, 70000, 1e-8, 6e-8, 3e-8, 2.9802322e-08, 5.9604645e-08, 1.0009765625, 1.00048828125, 1.00146484375}
	for i := 0; i < 200000; i++ {
		vals = append(vals, float32(r.NormFloat64()*math.Pow(2, float64(r.IntN(40)-28))))
	}
	for _, v := range vals {
		want := float16.Fromfloat32(v).Bits()
		if got := F32ToF16(v); got != want {
			t.Fatalf("F32ToF16(%v) = %#04x want %#04x", v, got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{{1, 0x3f80}, {-2, 0xc000}, {1.00390625, 0x3f80} /* tie -> even */, {1.01171875, 0x3f82} /* tie -> even up */, {3.1415927, 0x4049}} {
		if got := F32ToBF16(c.f); got != c.want {
			t.Errorf("F32ToBF16(%v) = %#04x want %#04x", c.f, got, c.want)
		}
		if back := BF16ToF32(c.want); F32ToBF16(back) != c.want {
			t.Errorf("round trip of %#04x", c.want)
		}
	}
}

func TestDotFormats(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{32, 64, 256, 1024} {
		x := randVec(r, n)
		a := randVec(r, n)
		a64 := make([]float64, n)
		for i, v := range a {
			a64[i] = float64(v)
		}
		approx(t, "Dot", Dot(a, x), dot64(a64, x), 1e-5)

		var f32b []byte
		for _, v := range a {
			f32b = binary.LittleEndian.AppendUint32(f32b, math.Float32bits(v))
		}
		approx(t, "DotF32Bytes", DotF32Bytes(f32b, x), dot64(a64, x), 1e-5)
		// The same bytes at an odd address take the decoding path.
		odd := append(make([]byte, 1, len(f32b)+1), f32b...)[1:]
		approx(t, "DotF32Bytes unaligned", DotF32Bytes(odd, x), dot64(a64, x), 1e-5)

		// F16 / BF16: expected values from the independently decoded elements.
		var f16b, bf16b []byte
		h64 := make([]float64, n)
		b64 := make([]float64, n)
		for i, v := range a {
			h := float16.Fromfloat32(v)
			f16b = binary.LittleEndian.AppendUint16(f16b, h.Bits())
			h64[i] = float64(h.Float32())
			bb := uint16(math.Float32bits(v) >> 16) // truncation: any bf16 pattern will do
			bf16b = binary.LittleEndian.AppendUint16(bf16b, bb)
			b64[i] = float64(math.Float32frombits(uint32(bb) << 16))
		}
		approx(t, "DotF16", DotF16(f16b, x), dot64(h64, x), 1e-5)
		approx(t, "DotBF16", DotBF16(bf16b, x), dot64(b64, x), 1e-5)

		// Q8_0 / Q4_0: random blocks built by hand from the layout description.
		var q8, q4 []byte
		q8v := make([]float64, n)
		q4v := make([]float64, n)
		for b := 0; b < n/32; b++ {
			d := float16.Fromfloat32(float32(r.Float64()*0.1 + 0.001))
			q8 = binary.LittleEndian.AppendUint16(q8, d.Bits())
			for j := 0; j < 32; j++ {
				q := int8(r.IntN(256) - 128)
				q8 = append(q8, byte(q))
				q8v[b*32+j] = float64(q) * float64(d.Float32())
			}
			q4 = binary.LittleEndian.AppendUint16(q4, d.Bits())
			for j := 0; j < 16; j++ {
				lo, hi := r.IntN(16), r.IntN(16)
				q4 = append(q4, byte(lo|hi<<4))
				q4v[b*32+j] = float64(lo-8) * float64(d.Float32())
				q4v[b*32+j+16] = float64(hi-8) * float64(d.Float32())
			}
		}
		approx(t, "DotQ8_0", DotQ8_0(q8, x), dot64(q8v, x), 1e-5)
		approx(t, "DotQ4_0", DotQ4_0(q4, x), dot64(q4v, x), 1e-5)

		// Dequant twins give exactly the element values.
		got := make([]float32, n)
		for _, c := range []struct {
			name string
			f    func([]float32, []byte)
			src  []byte
			want []float64
		}{{"F32", DequantF32Bytes, f32b, a64}, {"F16", DequantF16, f16b, h64}, {"BF16", DequantBF16, bf16b, b64}, {"Q8_0", DequantQ8_0, q8, q8v}, {"Q4_0", DequantQ4_0, q4, q4v}} {
			c.f(got, c.src)
			for i := range got {
				if float64(got[i]) != float64(float32(c.want[i])) {
					t.Fatalf("Dequant%s[%d] = %v want %v", c.name, i, got[i], c.want[i])
				}
			}
		}
	}
}

// TestQuantizeRoundTrip checks the quantisers' error bounds and their llama.cpp rules.
func TestQuantizeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := randVec(r, 256)
	back := make([]float32, len(x))
	DequantQ8_0(back, QuantizeQ8_0(nil, x))
	for b := 0; b < len(x); b += 32 {
		var amax float64
		for _, v := range x[b : b+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		for i := b; i < b+32; i++ {
			if d := math.Abs(float64(back[i] - x[i])); d > amax/127*0.5+amax*1e-3 {
				t.Fatalf("Q8_0 element %d: %v -> %v", i, x[i], back[i])
			}
		}
	}
	DequantQ4_0(back, QuantizeQ4_0(nil, x))
	for b := 0; b < len(x); b += 32 {
		var amax, m float64
		for _, v := range x[b : b+32] {
			if math.Abs(float64(v)) > amax {
				amax, m = math.Abs(float64(v)), float64(v)
			}
		}
		for i := b; i < b+32; i++ {
			if d := math.Abs(float64(back[i] - x[i])); d > amax/8*0.5+amax*1e-3+1e-6 {
				t.Fatalf("Q4_0 element %d: %v -> %v", i, x[i], back[i])
			}
			// The largest-magnitude element is exactly representable as nibble 0 (-8*d = m).
			if float64(x[i]) == m && math.Abs(float64(back[i])-m) > amax*1e-3 {
				t.Fatalf("Q4_0 extreme element %v -> %v", x[i], back[i])
			}
		}
	}
}

func TestRMSNormSoftmaxSiLU(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := randVec(r, 100)
	w := randVec(r, 100)
	out := make([]float32, 100)
	RMSNorm(out, x, w, 1e-5)
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	s := 1 / math.Sqrt(ss/100+1e-5)
	for i := range x {
		approx(t, "RMSNorm", out[i], float64(x[i])*s*float64(w[i]), 1e-6)
	}

	big := []float32{1000, 999, -1000, 0}
	Softmax(big)
	den := 1 + math.Exp(-1) + math.Exp(-2000) + math.Exp(-1000)
	for i, z := range []float64{0, -1, -2000, -1000} {
		approx(t, "Softmax", big[i], math.Exp(z)/den, 1e-6)
	}
	for _, v := range []float64{-30, -2, 0, 0.5, 3, 30} {
		approx(t, "SiLU", SiLU(float32(v)), v/(1+math.Exp(-v)), 1e-6)
		approx(t, "Sigmoid", Sigmoid(float32(v)), 1/(1+math.Exp(-v)), 1e-6)
	}
}

func TestRoPE(t *testing.T) {
	const d, pos, theta = 16, 37, 10000.0
	r := rand.New(rand.NewPCG(9, 10))
	x := randVec(r, d)
	inv := make([]float64, d/2)
	RoPEInvFreq(inv, d, theta)
	cos := make([]float32, d/2)
	sin := make([]float32, d/2)
	RoPEAngles(cos, sin, inv, pos)

	a := append([]float32(nil), x...)
	RoPEInterleaved(a, cos, sin)
	b := append([]float32(nil), x...)
	RoPENeoX(b, cos, sin)
	for i := 0; i < d/2; i++ {
		ang := pos * math.Pow(theta, -2*float64(i)/d)
		c, s := math.Cos(ang), math.Sin(ang)
		// interleaved pair (2i, 2i+1)
		approx(t, "interleaved re", a[2*i], float64(x[2*i])*c-float64(x[2*i+1])*s, 1e-5)
		approx(t, "interleaved im", a[2*i+1], float64(x[2*i])*s+float64(x[2*i+1])*c, 1e-5)
		// NeoX pair (i, i+d/2)
		approx(t, "neox re", b[i], float64(x[i])*c-float64(x[i+d/2])*s, 1e-5)
		approx(t, "neox im", b[i+d/2], float64(x[i])*s+float64(x[i+d/2])*c, 1e-5)
	}
}

func TestNoAllocs(t *testing.T) {
	x := make([]float32, 256)
	row := make([]byte, 256/32*Q8_0Bytes)
	if n := testing.AllocsPerRun(10, func() { DotQ8_0(row, x); Dot(x, x); Softmax(x) }); n != 0 {
		t.Fatalf("kernels allocate: %v", n)
	}
}
