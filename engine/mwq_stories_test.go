package engine

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mole-llm/mole/loader"
)

// stories260KSplit4 is the exact MoE re-packing of stories260K (four distinct experts of
// 43 hidden units each, all four used, ../shared/models/stories260K-moe/SOURCE.txt): MWQ
// quantises routed experts only, and the dense stories260K has none. Its experts are
// 64 (gate, up) and 43 (down) columns wide, so every MWQ row is padded to 128.
const stories260KSplit4 = "stories260K-moe/stories260K-moe-split4-top4.gguf"

// TestMWQStories260K produces the MWQ rows of README's stories260K table: mwq24 at 2, 3
// and 4 bits and mwq58 at 5 and 8 bits, calibrated on docs/stories-calib.txt and scored
// on the whole of docs/stories-eval.txt in windows of 256, as `mole quantize --calib
// docs/stories-calib.txt` and `mole perplexity --ctx 256 --expert-bits N` do. It asserts
// that the re-packing scores what the dense model scores in float32, that perplexity
// falls as bits rise from 2 to 5 bits (across both schemes), bounds per width, and that a
// batched step of the padded model gives Forward's bits.
//
// The bounds are not kjv-moe's (4 bits ≤ 1.01×, 3 ≤ 1.03×, 2 ≤ 1.08×, 8 ≤ 1.001×): a
// 64-wide model with 43-wide experts loses far more per bit (its a8w4 measured
// 1.053×). Measured ratios, AVX-512 / AVX2 / generic kernels (the calibration's and
// the fit's float sums, and so some of the fit's choices, differ per path): 2 bits
// 7.151 / 7.150 / 7.146, 3 bits 1.3087 / 1.3072 / 1.3097, 4 bits 1.0528 / 1.0530 /
// 1.0535, 5 bits 1.0009 / 1.0010 / 0.9982, 8 bits 0.9985 / 1.0015 / 0.9999. At 5 and 8
// bits the model scores float32's perplexity within the ±0.2% these 1,057 tokens
// resolve, so neither kjv-moe's 8-bit bound nor an order between 5 and 8 bits holds on
// every path: both get 1.005×. The other bounds sit above every path's ratio and still
// fail a broken quantizer or a padded column that sees a nonzero activation
// (perplexity in the hundreds).
func TestMWQStories260K(t *testing.T) {
	if testing.Short() {
		t.Skip("quantises stories260K twice and scores it: not in -short")
	}
	fm := openTestModel(t, stories260KSplit4)
	dense := openTestModel(t, "stories260K/stories260K.gguf")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ids := fm.Tok.Encode(read("stories-eval.txt"), false, false)
	calib := fm.Tok.Encode(read("stories-calib.txt"), false, false)
	ppl := func(m *Model) float64 {
		r, err := m.Perplexity(context.Background(), m.NewState(256), ids, PerplexityOptions{Window: 256})
		if err != nil {
			t.Fatal(err)
		}
		return r.Perplexity
	}
	base := ppl(fm)
	if d := ppl(dense); math.Abs(base/d-1) > 1e-5 {
		t.Fatalf("split4 re-packing perplexity %.6f, dense stories260K %.6f: not the same function", base, d)
	}
	params := int64(0)
	for _, tn := range fm.src.Tensors {
		params += int64(tn.Elems())
	}
	t.Logf("float32: perplexity %.4f (%d tokens, %d parameters)", base, len(ids), params)
	dir := os.Getenv("MOLE_MWQ_KEEP")
	if dir == "" {
		dir = t.TempDir()
	}
	// q8 of the same re-packing: what an MWQ model keeps outside its experts.
	q8Path := filepath.Join(dir, "stories260K-split4-q8.gguf")
	if _, err := Quantize(context.Background(), fm, q8Path, QuantizeOptions{Scheme: "q8", Calib: calib, CalibName: "stories-calib.txt", Window: 256}); err != nil {
		t.Fatal(err)
	}
	q8 := ppl(loadModelFile(t, q8Path))
	_, q8Bytes := mwqReadBytes(t, q8Path, 0)
	t.Logf("q8: %.3f bpw, file %d bytes, perplexity %.4f, ratio %.4f", 8*float64(q8Bytes)/float64(params), fileSize(t, q8Path), q8, q8/base)
	if q8/base > 1.001 {
		t.Errorf("q8 ratio %.4f above 1.001", q8/base)
	}

	type row struct {
		scheme string
		bits   int
		max    float64
	}
	table := []row{{"mwq24", 2, 10}, {"mwq24", 3, 1.4}, {"mwq24", 4, 1.08}, {"mwq58", 5, 1.005}, {"mwq58", 8, 1.005}}
	models := map[string]*Model{}
	prev := math.Inf(1)
	for _, r := range table {
		m := models[r.scheme]
		path := filepath.Join(dir, "stories260K-split4-"+r.scheme+".gguf")
		if m == nil {
			o := QuantizeOptions{Calib: calib, CalibName: "stories-calib.txt", Window: 256}
			if _, err := SetMWQ(&o, r.scheme); err != nil {
				t.Fatal(err)
			}
			if _, err := Quantize(context.Background(), fm, path, o); err != nil {
				t.Fatal(err)
			}
			m = loadModelFile(t, path)
			models[r.scheme] = m
		}
		if got := m.SetExpertBits([]int{r.bits}); got[0] != r.bits {
			t.Fatalf("%s: SetExpertBits(%d) gave %v", r.scheme, r.bits, got)
		}
		p := ppl(m)
		tensorBytes, readBytes := mwqReadBytes(t, path, r.bits)
		t.Logf("%s at %d bits: %.3f bpw read (%d of %d tensor bytes), file %d bytes, perplexity %.4f, ratio %.4f",
			r.scheme, r.bits, 8*float64(readBytes)/float64(params), readBytes, tensorBytes, fileSize(t, path), p, p/base)
		if p/base > r.max {
			t.Errorf("%s at %d bits: ratio %.4f above %.3f", r.scheme, r.bits, p/base, r.max)
		}
		if r.bits <= 5 && p >= prev {
			t.Errorf("%s at %d bits: perplexity %.4f not below %.4f at the previous width of the table", r.scheme, r.bits, p, prev)
		}
		prev = p
	}

	// The padded experts on Batch's path: each sequence gets the bits Forward gives it
	// (three stories' openings fed together, then one greedy token each per step).
	m := models["mwq24"]
	prompts := []string{"Once upon a time, there was a little girl named Lily.", "The cat", "One day, Tom went to the park"}
	const steps = 4
	for _, bits := range []int{2, 4} {
		m.SetExpertBits([]int{bits})
		b := m.NewBatch(64, 64)
		var items []BatchItem
		batched := make([]*State, len(prompts)) // the Batch's sequences
		alone := make([]*State, len(prompts))   // the same, each on its own through Forward
		want := make([][]float32, len(prompts))
		pos := make([]int, len(prompts))
		for k, p := range prompts {
			pids := m.Tok.Encode(p, true, false)
			batched[k], alone[k] = m.NewState(64), m.NewState(64)
			for i, tok := range pids {
				items = append(items, BatchItem{State: batched[k], Token: tok, Pos: i, Wants: i == len(pids)-1})
				want[k] = alone[k].Forward(tok, i)
			}
			pos[k] = len(pids)
		}
		for step := range steps {
			b.Forward(items)
			var next []BatchItem
			k := 0
			for i, it := range items {
				if !it.Wants {
					continue
				}
				lg := b.Logits(i)
				sameLogits(t, fmt.Sprintf("stories260K mwq24 at %d bits, step %d, sequence %d: Batch vs Forward", bits, step, k), [][]float32{lg}, [][]float32{want[k]})
				tok := argmaxID(lg)
				next = append(next, BatchItem{State: batched[k], Token: tok, Pos: pos[k], Wants: true})
				want[k] = alone[k].Forward(tok, pos[k])
				pos[k]++
				k++
			}
			items = next
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// mwqReadBytes returns the bytes of every tensor in the file at path, and those a run
// at `bits` reads: all but the residual planes wider than bits ("<name>.mwq<k>", k >
// bits). This is how README counts an MWQ width's bits per weight.
func mwqReadBytes(t *testing.T, path string, bits int) (file, read int64) {
	t.Helper()
	lm, err := loader.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	for _, tn := range lm.Tensors {
		n := int64(len(tn.Data))
		file += n
		if i := strings.LastIndex(tn.Name, ".mwq"); i >= 0 {
			var k int
			if _, err := fmt.Sscanf(tn.Name[i:], ".mwq%d", &k); err == nil && k > bits {
				continue
			}
		}
		read += n
	}
	return file, read
}
