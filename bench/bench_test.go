package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

func tinyShape(t *testing.T) Shape {
	t.Helper()
	s, err := PresetByName("tiny-moe")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// load opens a generated file through the loader and the engine, as mole does.
func load(t *testing.T, path string) (*loader.Model, *engine.Model) {
	t.Helper()
	lm, err := loader.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	m, err := engine.Load(lm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return lm, m
}

// Every --arch and --type loads in mole with llama.cpp's names and metadata, has the
// family's parts, and runs a few tokens to finite logits.
func TestGenerateEveryArch(t *testing.T) {
	dir := t.TempDir()
	want := map[string]struct{ gguf, family string }{
		"mixtral": {"llama", "mixtral"}, "qwen2moe": {"qwen2moe", "qwen2moe"}, "qwen3moe": {"qwen3moe", "qwen3moe"},
		"olmoe": {"olmoe", "olmoe"}, "llama": {"llama", "llama"},
	}
	for _, arch := range Archs {
		for _, typ := range []string{"f16", "q8_0", "q4_0"} {
			dt, err := ParseType(typ)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, arch+"-"+typ+".gguf")
			if err := GenerateGGUF(path, GenOptions{Shape: tinyShape(t), Arch: arch, Type: dt, Seed: 7}); err != nil {
				t.Fatalf("%s %s: %v", arch, typ, err)
			}
			lm, m := load(t, path)
			c := m.Config
			if lm.GGUF.Architecture() != want[arch].gguf || c.Family != want[arch].family {
				t.Errorf("%s: general.architecture %q family %q, want %q %q", arch, lm.GGUF.Architecture(), c.Family, want[arch].gguf, want[arch].family)
			}
			L := m.Layers[0]
			if L.Wq.DType != dt || m.Output.DType != dt {
				t.Errorf("%s %s: weights stored as %v", arch, typ, L.Wq.DType)
			}
			switch arch {
			case "llama":
				if L.Router != nil || L.Gate == nil || c.NExpert != 0 {
					t.Errorf("llama: want a dense FFN")
				}
			default:
				if v, ok := lm.GGUF.Uint(want[arch].gguf + ".expert_count"); !ok || v != 4 {
					t.Errorf("%s: expert_count %d %v", arch, v, ok)
				}
				if L.Router.DType != loader.F32 || len(L.ExpGate) != 4 {
					t.Errorf("%s: router %v, %d experts", arch, L.Router.DType, len(L.ExpGate))
				}
				if _, ok := lm.Tensor("blk.1.ffn_down_exps.weight"); !ok {
					t.Errorf("%s: no stacked expert tensor", arch)
				}
			}
			if (arch == "qwen2moe") != (L.Bq != nil && L.ShGate != nil) {
				t.Errorf("%s: biases %v, shared expert %v", arch, L.Bq != nil, L.ShGate != nil)
			}
			if (arch == "qwen3moe" || arch == "olmoe") != (L.QNorm != nil) {
				t.Errorf("%s: q norm %v", arch, L.QNorm != nil)
			}
			if m.Tok == nil {
				t.Fatalf("%s: no tokenizer", arch)
			}
			st := m.NewState(8)
			for i, tok := range m.Tok.Encode("a test", true, false) {
				for _, v := range st.Forward(tok, i) {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s %s: logit %v at position %d", arch, typ, v, i)
					}
				}
			}
		}
	}
}

// The same options give the same bytes; another seed gives others; no temporary file
// is left beside the result.
func TestGenerateReproducible(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string, seed uint64) []byte {
		p := filepath.Join(dir, name)
		if err := GenerateGGUF(p, GenOptions{Shape: tinyShape(t), Type: loader.Q4_0, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := gen("a.gguf", 3), gen("b.gguf", 3), gen("c.gguf", 4)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same bytes")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("directory holds %d entries, want the 3 files", len(ents))
	}
}

// A large file reports its progress: increasing byte counts that end at the file's size.
func TestGenerateProgress(t *testing.T) {
	defer func(v int64) { ProgressMin = v }(ProgressMin)
	ProgressMin = 0
	var calls int
	var last, total int64
	p := filepath.Join(t.TempDir(), "m.gguf")
	err := GenerateGGUF(p, GenOptions{Shape: tinyShape(t), Type: loader.F16, Progress: func(done, tot int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		calls, last, total = calls+1, done, tot
	}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != st.Size() || total != st.Size() {
		t.Errorf("progress: %d calls, last %d of %d, file %d bytes", calls, last, total, st.Size())
	}
}

// Bytes per token, counted by hand for tiny-moe (hidden 128, 2 layers, 4 heads of 32 over
// 2 KV heads, 4 experts top-2 of width 192, vocab 512).
func TestTrafficByHand(t *testing.T) {
	dir := t.TempDir()
	// Mixtral in Q4_0: 18 bytes per 32 weights, so a row of 128 is 72 bytes and of 192, 108.
	//   attention per layer: q 128 rows + k 64 + v 64 + o 128, all of 128 columns: 384*72 = 27648
	//   router per layer: F32 4x128 = 2048
	//   experts per layer: 2 used x (gate 192*72 + up 192*72 + down 128*108) = 2*41472 = 82944
	//   output head: 512*72 = 36864
	//   other: embedding row 72 + output norm 512 + per layer 2 norms of 512
	mixtral := Traffic{Attention: 2 * 27648, Router: 2 * 2048, Experts: 2 * 82944, Output: 36864, Other: 72 + 512 + 2*1024}
	mixtral.Bytes = 264776
	//   multiply-adds: attention 2*(384*128), routers 2*4*128, experts 2*2*3*192*128, output 512*128
	mixtral.MACs = 2*384*128 + 2*4*128 + 2*2*3*192*128 + 512*128
	mixtral.FloatMACs = 2 * 4 * 128 // the F32 routers
	// Qwen2-MoE in F16 (2 bytes a weight) adds q/k/v biases (256 floats a layer) and a shared
	// expert of width 2*192 = 384 with its F32 gate vector of 128.
	//   attention per layer: 384*128*2 = 98304; experts per layer: 2*3*192*128*2 + 3*384*128*2 + 512
	qwen := Traffic{Attention: 2 * 98304, Router: 2 * 2048, Experts: 2 * (294912 + 294912 + 512), Output: 512 * 128 * 2,
		Other: 256 + 512 + 2*(1024+1024)}
	qwen.Bytes = 1517312
	qwen.MACs = 2*384*128 + 2*4*128 + 2*(2*3*192*128+3*384*128+128) + 512*128
	qwen.FloatMACs = qwen.MACs // F16 matrices, F32 routers and shared-expert gates: all float
	for _, c := range []struct {
		arch string
		dt   loader.DType
		want Traffic
	}{{"mixtral", loader.Q4_0, mixtral}, {"qwen2moe", loader.F16, qwen}} {
		p := filepath.Join(dir, c.arch+".gguf")
		if err := GenerateGGUF(p, GenOptions{Shape: tinyShape(t), Arch: c.arch, Type: c.dt}); err != nil {
			t.Fatal(err)
		}
		_, m := load(t, p)
		got := TrafficOf(m)
		if sum := c.want.Attention + c.want.Router + c.want.Experts + c.want.Output + c.want.Other; sum != c.want.Bytes {
			t.Fatalf("%s: the hand computation does not add up: %d != %d", c.arch, sum, c.want.Bytes)
		}
		if got.Attention != c.want.Attention || got.Router != c.want.Router || got.Experts != c.want.Experts ||
			got.Output != c.want.Output || got.Other != c.want.Other || got.Bytes != c.want.Bytes || got.MACs != c.want.MACs ||
			got.FloatMACs != c.want.FloatMACs {
			t.Errorf("%s:\n got %+v\nwant %+v", c.arch, got, c.want)
		}
		params, _ := ParamCount(tinyShape(t), c.arch)
		if got.Params != params {
			t.Errorf("%s: %d parameters, generator says %d", c.arch, got.Params, params)
		}
	}
}

// The real presets write files mole loads, with the shapes the issue names.
func TestPresetsLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 350 MB model")
	}
	s, _ := PresetByName("bench-moe")
	p := filepath.Join(t.TempDir(), "bench-moe.gguf")
	if err := GenerateGGUF(p, GenOptions{Shape: s, Type: loader.Q4_0, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	_, m := load(t, p)
	c := m.Config
	if c.NEmbd != 1024 || c.NLayer != 8 || c.NHead != 16 || c.NKVHead != 8 || c.NExpert != 8 || c.NExpertUsed != 2 ||
		c.NFFExpert != 2816 || c.Vocab != 32000 || c.Family != "mixtral" {
		t.Errorf("bench-moe config %+v", c)
	}
	tr := TrafficOf(m)
	if params, _ := ParamCount(s, "mixtral"); tr.Params != params {
		t.Errorf("%d parameters, generator says %d", tr.Params, params)
	}
	st := m.NewState(4)
	for i := range 2 {
		st.Forward(int32(100+i), i)
	}
	for _, name := range []string{"olmoe-1b-7b", "qwen3-moe-mini"} {
		s, err := PresetByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewGGUFWriter(GenOptions{Shape: s, Type: loader.Q4_0}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func fakeReport() *Report {
	r := &Report{Env: Env{CPU: "Test CPU <x>", Cores: 2, ISA: "generic", GoVersion: "go1", Commit: "abc"}}
	for _, th := range []int{1, 2} {
		for _, test := range []string{"pp64", "tg16"} {
			x := Result{Model: "m.gguf", ModelType: "llama 1M Q4_0", ModelSize: 1 << 20, Params: 1e6, Backend: "CPU", ISA: "generic",
				Threads: th, Test: test, SamplesNs: []int64{1e9, 2e9}, SamplesTs: []float64{10, 20}, BytesToken: 1 << 20, MACsToken: 1e6}
			if test == "tg16" {
				x.NGen = 16
			} else {
				x.NPrompt = 64
			}
			summarise(&x, Roofline{ReadGBs: 10, PeakGMACs: 100, PeakGFLOPs: 50})
			r.Results = append(r.Results, x)
		}
	}
	return r
}

func TestStatistics(t *testing.T) {
	x := fakeReport().Results[1]
	// samples 10 and 20 t/s: mean 15, sample sd sqrt(50)
	if x.AvgTs != 15 || math.Abs(x.StddevTs-math.Sqrt(50)) > 1e-12 {
		t.Errorf("mean %v sd %v", x.AvgTs, x.StddevTs)
	}
	// tg: min(10e9 / 2^20 B, 100e9 / 1e6 MAC) = 9536.7 t/s, by bandwidth
	if x.RoofKind != "bandwidth" || math.Abs(x.RoofTs-10e9/(1<<20)) > 1e-6 || math.Abs(x.RoofPct-100*15/x.RoofTs) > 1e-9 {
		t.Errorf("roofline %v %v %v", x.RoofKind, x.RoofTs, x.RoofPct)
	}
	if pp := fakeReport().Results[0]; pp.RoofKind != "compute" || math.Abs(pp.RoofTs-1e5) > 1e-6 {
		t.Errorf("pp roofline %v %v", pp.RoofKind, pp.RoofTs)
	}
	// pp of a model in float (F16): its 1e6 MACs are 2e6 FLOPs at 50 GFLOP/s, 25000 t/s;
	// of a mixed one (3/4 integer, 1/4 float): 0.75e6/100e9 + 0.5e6/50e9 s, 1/(17.5 µs).
	roof := Roofline{ReadGBs: 10, PeakGMACs: 100, PeakGFLOPs: 50}
	for _, c := range []struct {
		float int64
		want  float64
	}{{0, 1e5}, {1e6, 25000}, {250000, 1 / 17.5e-6}} {
		x := Result{NPrompt: 64, SamplesNs: []int64{1e9}, SamplesTs: []float64{10}, MACsToken: 1e6, Traffic: Traffic{FloatMACs: c.float}}
		summarise(&x, roof)
		if x.RoofKind != "compute" || math.Abs(x.RoofTs-c.want) > 1e-6*c.want || x.PeakGFLOPs != 50 {
			t.Errorf("pp with %d float MACs: roofline %v %v, want %v", c.float, x.RoofKind, x.RoofTs, c.want)
		}
	}
	// A peak that was not measured gives no roof rather than a wrong one.
	if got := computeRoof(1e6, 1e6, Roofline{PeakGMACs: 100}); got != 0 {
		t.Errorf("float model without a float peak: roof %v", got)
	}
}

func TestReportFormats(t *testing.T) {
	r := fakeReport()
	var md, js, csvb, svg bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| model | size | params | backend | threads | test | t/s | bytes/token | GB/s | % roofline | peak RSS |") ||
		!strings.Contains(md.String(), "| llama 1M Q4_0 | 0.00 GiB | 1.00 M | CPU | 2 | tg16 | 15.00 ± 7.07 | 1.0 MiB |") ||
		!strings.HasPrefix(md.String(), "CPU: Test CPU <x>") || !strings.Contains(md.String(), "float32 peak") {
		t.Errorf("markdown:\n%s", md.String())
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != 4 || back.Results[3].AvgTs != 15 {
		t.Errorf("JSON round trip: %v", err)
	}
	if err := r.WriteCSV(&csvb); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(csvb.String()), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[0], "build_commit,") {
		t.Errorf("CSV:\n%s", csvb.String())
	}
	if err := r.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	n := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG is not well-formed XML: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			n++
		}
	}
	if n != 4 { // two series (pp64, tg16), each with its roofline
		t.Errorf("%d polylines, want 4", n)
	}
}

func TestRooflineMeasures(t *testing.T) {
	defer func(v int) { BufferBytes = v }(BufferBytes)
	BufferBytes = 16 << 20
	r := MeasureRoofline(1)
	if r.ReadGBs <= 0 || r.PeakGMACs <= 0 || r.PeakGFLOPs <= 0 || r.GemmGMACs <= 0 || r.ISA == "" ||
		r.PeakMethod == "" || r.FloatMethod == "" || r.GemmMethod == "" {
		t.Errorf("%+v", r)
	}
	// The peak loop is what the cores can issue; a real kernel stays below it (by a wide
	// margin on the SIMD paths, so a shared machine's noise cannot flip it).
	if r.ISA != "generic" && r.GemmGMACs >= r.PeakGMACs {
		t.Errorf("Q8_0 GEMM at %.1f GMAC/s is not below the int8 peak %.1f", r.GemmGMACs, r.PeakGMACs)
	}
	t.Logf("%s: read %.1f GB/s, int8 peak %.1f GMAC/s (%s), float32 peak %.1f GFLOP/s, Q8_0 GEMM %.1f GMAC/s",
		r.ISA, r.ReadGBs, r.PeakGMACs, r.PeakMethod, r.PeakGFLOPs, r.GemmGMACs)
	buf := make([]byte, 5<<20) // more than one 4 MiB piece
	buf[len(buf)-96] = 1       // the first byte of a little-endian word: adds 1
	if streamRead(buf) != 1 {
		t.Error("streamRead misses part of its input")
	}
}

func TestCommitAndRSS(t *testing.T) {
	if Commit() == "" {
		t.Error("empty commit")
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && PeakRSS() <= 0 {
		t.Error("no peak RSS on a system with /proc")
	}
}

// mole's own schemes: every arch loads with the tensor types `mole quantize` writes, the
// metadata mole info shows, valid encodings (A8W4 zero points, multipliers and padding),
// weights of variance about 1/cols at every MWQ width, and finite, non-degenerate logits.
func TestGenerateMoleSchemes(t *testing.T) {
	dir := t.TempDir()
	shape := tinyShape(t)
	// 200-wide experts: the down projections' rows are padded to 224 (MOLE_Q8, A8W4) and
	// are not whole MWQ groups, so they stay MOLE_Q8 in the MWQ schemes.
	shape.NFFExpert = 200
	for _, arch := range Archs {
		for _, scheme := range MoleSchemes {
			dt, sc, err := ParseGenType(strings.ToUpper(scheme))
			if err != nil || sc != scheme || dt != 0 {
				t.Fatalf("ParseGenType(%s) = %v %q %v", scheme, dt, sc, err)
			}
			path := filepath.Join(dir, arch+"-"+scheme+".gguf")
			if err := GenerateGGUF(path, GenOptions{Shape: shape, Arch: arch, Scheme: scheme, Seed: 5}); err != nil {
				t.Fatalf("%s %s: %v", arch, scheme, err)
			}
			lm, m := load(t, path)
			what := arch + " " + scheme
			if got, _ := lm.GGUF.String("mole.quant.scheme"); got != scheme {
				t.Errorf("%s: mole.quant.scheme %q", what, got)
			}
			if g, _ := lm.GGUF.Uint("mole.quant.group_size"); g != 128 {
				t.Errorf("%s: group size %d", what, g)
			}
			if _, ok := lm.GGUF.Uint("general.file_type"); ok {
				t.Errorf("%s: general.file_type is set", what)
			}
			b1, k, isMWQ := mwqWidths(scheme)
			if b, _ := lm.GGUF.Uint("mole.mwq.base_bits"); isMWQ && int(b) != b1 {
				t.Errorf("%s: mole.mwq.base_bits %d", what, b)
			}
			wantProj := map[string]loader.DType{"q8": loader.MoleQ8, "a8w4": loader.MoleA8W4}[scheme]
			if isMWQ {
				wantProj = loader.MoleQ8
			}
			L := m.Layers[0]
			if m.Embed.DType != loader.F16 || m.Output.DType != loader.MoleQ8 || L.Wq.DType != wantProj || L.Wo.DType != wantProj {
				t.Errorf("%s: embedding %v, head %v, q %v, o %v", what, m.Embed.DType, m.Output.DType, L.Wq.DType, L.Wo.DType)
			}
			if arch == "llama" {
				if L.Gate.DType != wantProj {
					t.Errorf("%s: dense FFN %v", what, L.Gate.DType)
				}
			} else {
				wantExp := wantProj
				if isMWQ {
					wantExp, _ = quant.MWQBaseDType(b1)
				}
				if L.Router.DType != loader.F16 || L.ExpGate[0].DType != wantExp || L.ExpUp[3].DType != wantExp || L.ExpDown[0].DType != wantProj {
					t.Errorf("%s: router %v, experts %v %v %v", what, L.Router.DType, L.ExpGate[0].DType, L.ExpUp[3].DType, L.ExpDown[0].DType)
				}
				if base, maxBits, ok := m.MWQBits(); ok != isMWQ || base != b1 || maxBits != k {
					t.Errorf("%s: MWQ bits %d..%d %v", what, base, maxBits, ok)
				}
			}
			if scheme == "a8w4" {
				checkA8W4(t, lm, "blk.1.attn_q.weight")
				if arch != "llama" {
					checkA8W4(t, lm, "blk.0.ffn_down_exps.weight")
				}
			}
			// Weights have variance about 1/cols (the llama.cpp types' uniform ±sqrt(3/cols)),
			// at every MWQ width.
			mats := []*engine.Matrix{L.Wq, m.Output}
			if arch == "llama" {
				mats = append(mats, L.Down)
			} else {
				mats = append(mats, L.ExpGate[1], L.ExpDown[2])
			}
			widths := []int{0}
			if isMWQ && arch != "llama" {
				widths = []int{b1, k}
			}
			for _, b := range widths {
				m.SetExpertBits([]int{b})
				for _, mm := range mats {
					if v := meanSquare(mm) * float64(mm.Cols); v < 0.6 || v > 1.6 {
						t.Errorf("%s at %d bits: %s has cols x mean square %.3f, want about 1", what, b, mm.Name, v)
					}
				}
			}
			st := m.NewState(8)
			for i := range 6 {
				logits := st.Forward(int32(50+37*i), i)
				var sum, sq float64
				for _, v := range logits {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s: logit %v at position %d", what, v, i)
					}
					sum += float64(v)
					sq += float64(v) * float64(v)
				}
				n := float64(len(logits))
				if sd := math.Sqrt(sq/n - sum*sum/n/n); sd < 0.05 || sd > 100 {
					t.Errorf("%s: logits' standard deviation %.3g at position %d: the activations vanish or blow up", what, sd, i)
				}
			}
		}
	}
	// The same seed gives the same bytes.
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	for _, p := range []string{a, b} {
		if err := GenerateGGUF(p, GenOptions{Shape: shape, Scheme: "mwq24", Seed: 9}); err != nil {
			t.Fatal(err)
		}
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) {
		t.Error("mwq24: same seed, different bytes")
	}
	if err := GenerateGGUF(a, GenOptions{Shape: shape, Scheme: "q4"}); err == nil {
		t.Error("unknown scheme accepted")
	}
}

// checkA8W4 checks the MOLE_A8W4 tensor name against docs/format.md: zero points 0..15,
// multipliers >= 1, S2*(q-z) an int8 for every code, padding codes equal to the last
// group's zero point.
func checkA8W4(t *testing.T, lm *loader.Model, name string) {
	t.Helper()
	codes, _ := lm.Tensor(name)
	grp, ok := lm.Tensor(name + ".group")
	if codes == nil || !ok || grp.DType != loader.I8 {
		t.Fatalf("%s: tensors %v %v", name, codes, grp)
	}
	pc := codes.Shape[len(codes.Shape)-1]
	ng := grp.Shape[len(grp.Shape)-1] / 2
	rows := codes.Elems() / pc
	cols := pc
	if strings.Contains(name, "down") {
		cols = 200
	}
	if ng != (pc+127)/128 || grp.Elems() != rows*2*ng {
		t.Fatalf("%s: %d groups for %d padded columns, %d group bytes for %d rows", name, ng, pc, grp.Elems(), rows)
	}
	seen := map[int]bool{}
	for r := range rows {
		row := codes.Data[r*pc/2 : (r+1)*pc/2]
		for k := range pc {
			b := row[k/32*16+k%16]
			q := int(b & 15)
			if k%32 >= 16 {
				q = int(b >> 4)
			}
			g := k / 128
			z, s2 := int(int8(grp.Data[2*(r*ng+g)])), int(int8(grp.Data[2*(r*ng+g)+1]))
			if z < 0 || z > 15 || s2 < 1 || s2*(q-z) < -127 || s2*(q-z) > 127 {
				t.Fatalf("%s row %d col %d: code %d, zero %d, S2 %d", name, r, k, q, z, s2)
			}
			if k >= cols && q != z {
				t.Fatalf("%s row %d: padding code %d at %d, zero point %d", name, r, q, k, z)
			}
			seen[q] = true
		}
	}
	if len(seen) != 16 {
		t.Errorf("%s: only %d distinct codes", name, len(seen))
	}
}

// meanSquare is the mean of w² over a matrix, dequantized by the engine.
func meanSquare(mm *engine.Matrix) float64 {
	row := make([]float32, mm.Cols)
	var s float64
	for r := range mm.Rows {
		mm.RowF32(r, row)
		for _, v := range row {
			s += float64(v) * float64(v)
		}
	}
	return s / float64(mm.Rows*mm.Cols)
}

// MWQ bytes per token, by hand for tiny-moe in mwq24 (expert width 192: gate and up are
// MWQ, down is not a whole number of 128-groups and stays MOLE_Q8):
//
//	attention per layer: MOLE_Q8, (128+64+64+128) rows of 128 bytes = 49152, plus 8
//	  bytes per row read beside them (row scale, row sum): 3072
//	router per layer: F16 4x128 = 1024
//	one expert at b bits: gate and up 192 rows x (36-byte base + (b-2) x 18-byte planes),
//	  down 128 rows of 192 int8 (+ 8 bytes per row): 2*(6912 + (b-2)*3456) + 24576 + 1024;
//	  two used per layer
//	output head MOLE_Q8 512x128 = 65536 (+ 4096); other: embedding row (F16) 256 + 512 + 2 x 1024
//
// and the file's weights hold every plane: 512x256 + 512 + 65536 + 2 x (1024 + 49152 +
// 1024 + 4 x (2*(6912+6912) + 24576)) = 717312.
func TestTrafficMWQ(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mwq24.gguf")
	if err := GenerateGGUF(p, GenOptions{Shape: tinyShape(t), Scheme: "mwq24"}); err != nil {
		t.Fatal(err)
	}
	_, m := load(t, p)
	expert := func(b int) int64 { return 2*(6912+int64(b-2)*3456) + 24576 + 1024 }
	for _, c := range []struct{ bits []int }{{[]int{2}}, {[]int{3}}, {[]int{4}}, {[]int{2, 4}}} {
		got := TrafficAt(m, m.SetExpertBits(c.bits))
		b0, b1 := c.bits[0], c.bits[len(c.bits)-1]
		want := Traffic{Attention: 2 * (49152 + 3072), Router: 2 * 1024, Experts: 2*expert(b0) + 2*expert(b1), Output: 65536 + 4096, Other: 256 + 512 + 2*1024}
		if got.Attention != want.Attention || got.Router != want.Router || got.Experts != want.Experts || got.Output != want.Output ||
			got.Other != want.Other || got.Bytes != want.Attention+want.Router+want.Experts+want.Output+want.Other || got.FileBytes != 717312 {
			t.Errorf("bits %v:\n got %+v\nwant %+v (file 717312)", c.bits, got, want)
		}
	}
	// TrafficOf counts the widest width, whatever the model is set to.
	m.SetExpertBits([]int{2})
	if got, want := TrafficOf(m).Experts, 4*expert(4); got != want {
		t.Errorf("TrafficOf: experts %d, want %d", got, want)
	}
}

// Run at several expert widths: one row per width and test, narrowest first, each with
// its own bytes per token; a model without MWQ experts runs once; a width the model
// does not store is refused.
func TestRunExpertBits(t *testing.T) {
	defer func(v int) { BufferBytes = v }(BufferBytes)
	BufferBytes = 16 << 20
	dir := t.TempDir()
	mwq, q8 := filepath.Join(dir, "mwq24.gguf"), filepath.Join(dir, "q8.gguf")
	for p, sc := range map[string]string{mwq: "mwq24", q8: "q8"} {
		if err := GenerateGGUF(p, GenOptions{Shape: tinyShape(t), Scheme: sc}); err != nil {
			t.Fatal(err)
		}
	}
	open := func(path string) (*engine.Model, func(), error) {
		lm, err := loader.Open(path)
		if err != nil {
			return nil, nil, err
		}
		m, err := engine.Load(lm)
		if err != nil {
			lm.Close()
			return nil, nil, err
		}
		return m, func() { m.Close(); lm.Close() }, nil
	}
	// tg longer than pp: the batch's context must hold the State's whole cache.
	o := Options{Models: []string{mwq, q8}, Open: open, Prompts: []int{4}, Gens: []int{6}, Reps: 1, Threads: []int{1}, ExpertBits: []int{4, 2, 4}}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	bytesAt := map[int]int64{}
	for _, x := range rep.Results {
		got = append(got, fmt.Sprintf("%s@%d %s", x.ModelType, x.ExpertBits, x.Test))
		if x.ExpertBits > 0 {
			bytesAt[x.ExpertBits] = x.BytesToken
		}
	}
	want := []string{"llama 821K MWQ24@2 pp4", "llama 821K MWQ24@2 tg6", "llama 821K MWQ24@4 pp4", "llama 821K MWQ24@4 tg6",
		"llama 821K MOLE_Q8@0 pp4", "llama 821K MOLE_Q8@0 tg6"}
	if !slices.Equal(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
	// Two more planes of 18 bytes per 128 weights, in gate and up of 2 experts x 2 layers.
	if d := bytesAt[4] - bytesAt[2]; d != 2*2*2*2*3456 {
		t.Errorf("4 bits read %d bytes more than 2 bits, want %d", d, 2*2*2*2*3456)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "| threads | expert bits | test |") || !strings.Contains(md.String(), "| 1 | 2 | tg6 |") ||
		!strings.Contains(md.String(), "| 1 | - | tg6 |") {
		t.Errorf("markdown:\n%s", md.String())
	}
	var csvb bytes.Buffer
	rep.WriteCSV(&csvb)
	if lines := strings.Split(csvb.String(), "\n"); !strings.Contains(lines[0], ",n_threads,expert_bits,test,") || !strings.Contains(lines[1], ",1,2,pp4,") {
		t.Errorf("CSV:\n%s", csvb.String())
	}
	o.Models, o.ExpertBits = []string{mwq}, []int{5}
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "2 to 4 bits") {
		t.Errorf("width 5 on mwq24: %v", err)
	}
}

// TestTrafficA8W4 checks that an A8W4 product counts what its kernel streams: per row of
// 128 columns, 64 bytes of codes, the 2-byte (z, S2) pair of its group and 8 bytes of
// row scale and row sum (tiny-moe's attention: 384 rows of 128 per layer, two layers).
func TestTrafficA8W4(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a8w4.gguf")
	if err := GenerateGGUF(p, GenOptions{Shape: tinyShape(t), Scheme: "a8w4"}); err != nil {
		t.Fatal(err)
	}
	_, m := load(t, p)
	if got, want := TrafficOf(m).Attention, int64(2*384*(64+2+8)); got != want {
		t.Errorf("A8W4 attention bytes per token %d, want %d", got, want)
	}
}

// A cancelled generation stops, removes its temporary file and leaves no file.
func TestGenerateCancel(t *testing.T) {
	defer func(v int64) { ProgressMin = v }(ProgressMin)
	ProgressMin = 0
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := tinyShape(t)
	s.NLayer = 8                                                                                                                                     // several MiB, so that the write flushes after the cancel
	err := GenerateGGUFContext(ctx, filepath.Join(dir, "m.gguf"), GenOptions{Shape: s, Type: loader.F32, Progress: func(int64, int64) { cancel() }}) // cancelled once the write has begun
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("directory holds %v", ents)
	}
}
