package engine

import (
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/loader"
)

// TestQuantizedGreedy writes stories260K and kjv-moe as Q8_0 and Q4_0 GGUF with mole's
// own writer and checks that greedy decoding through the integer kernels (activations
// rounded to Q8_0 blocks, as llama.cpp does) gives the float32 model's tokens for at
// least the first 16 steps, and that a quantised forward step allocates nothing.
func TestQuantizedGreedy(t *testing.T) {
	const n = 24 // generated tokens compared; at least the first 16 must agree
	bases := []struct {
		name string
		open func(t *testing.T) *Model
		// prompt returns the prompt tokens.
		prompt func(m *Model) []int32
		// agree is how many leading tokens must match per dtype (as measured; every ISA
		// path computes the same bits, so this does not depend on the CPU).
		agree map[loader.DType]int
	}{
		{"stories260K", func(t *testing.T) *Model { return openTestModel(t, "stories260K/stories260K.gguf") },
			func(*Model) []int32 { return []int32{1} }, map[loader.DType]int{loader.Q8_0: n, loader.Q4_0: n}},
		{"kjv-moe", func(t *testing.T) *Model { return loadDefaultModel(t) },
			func(m *Model) []int32 { return m.Tok.Encode("And the LORD said unto Moses,", true, false) },
			// Q4_0 leaves at token 18, the near-tie where llama.cpp's own Q4_0 file leaves
			// the F32 continuation too (../shared/models/kjv-moe-gguf/SOURCE.txt).
			map[loader.DType]int{loader.Q8_0: n, loader.Q4_0: 18}},
	}
	for _, b := range bases {
		t.Run(b.name, func(t *testing.T) {
			base := b.open(t)
			prompt := b.prompt(base)
			want := greedy(base.NewState(len(prompt)+n), prompt, n)
			for _, dt := range []loader.DType{loader.Q8_0, loader.Q4_0} {
				t.Run(dt.String(), func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "q.gguf")
					if err := WriteGGUF(base, path, dt); err != nil {
						t.Fatal(err)
					}
					m := loadModelFile(t, path)
					if L := &m.Layers[0]; !L.Wq.Quantized() || L.Wq.DType != dt {
						t.Fatalf("Wq is %v (quantized %v), want %v", L.Wq.DType, L.Wq.Quantized(), dt)
					}
					s := m.NewState(len(prompt) + n)
					got := greedy(s, prompt, n)
					same := 0
					for same < n && got[same] == want[same] {
						same++
					}
					t.Logf("%s %v: %d of %d greedy tokens equal the float32 model's", b.name, dt, same, n)
					if same < b.agree[dt] {
						t.Errorf("greedy\n got %v\nwant %v (first difference at %d, need %d equal)", got, want, same, b.agree[dt])
					}
					pos := len(prompt)
					if a := testing.AllocsPerRun(10, func() { s.Forward(got[0], pos) }); a != 0 {
						t.Errorf("quantised Forward: %v allocations per token", a)
					}
				})
			}
		})
	}
}

// BenchmarkDecodeKJVQ8_0: tokens/s of single-sequence decode of llama.cpp's kjv-moe Q8_0
// GGUF, through the integer kernels ("int8") and through the float-activation row dot
// products mole used before ("floatdot", the Matrix's dot function), in the same run.
func BenchmarkDecodeKJVQ8_0(b *testing.B) {
	m := openTestModel(b, filepath.Join("kjv-moe-gguf", "kjv-moe-Q8_0.gguf"))
	for _, mode := range []string{"int8", "floatdot"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "floatdot" {
				setQuantKernels(m, false)
				defer setQuantKernels(m, true)
			}
			s := m.NewState(256)
			pos := 0
			b.ResetTimer()
			for b.Loop() {
				s.Forward(5, pos%256)
				pos++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// setQuantKernels switches every Q8_0/Q4_0 matrix of m between the integer kernels (on)
// and the float-activation dot products (off), for benchmarks.
func setQuantKernels(m *Model, on bool) {
	set := func(x *Matrix) {
		if x == nil {
			return
		}
		switch {
		case !on:
			x.qk = qkNone
		case x.DType == loader.Q8_0:
			x.qk = qkQ8_0
		case x.DType == loader.Q4_0:
			x.qk = qkQ4_0
		}
	}
	set(m.Output)
	for l := range m.Layers {
		L := &m.Layers[l]
		for _, x := range []*Matrix{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down, L.ShGate, L.ShUp, L.ShDown} {
			set(x)
		}
		for e := range L.ExpGate {
			set(L.ExpGate[e])
			set(L.ExpUp[e])
			set(L.ExpDown[e])
		}
	}
}
