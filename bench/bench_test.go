package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/loader"
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

// A large file shows a progress bar ending in 100%.
func TestGenerateProgress(t *testing.T) {
	defer func(v int64) { ProgressMin = v }(ProgressMin)
	ProgressMin = 0
	var bar bytes.Buffer
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := GenerateGGUF(p, GenOptions{Shape: tinyShape(t), Type: loader.F16, Progress: &bar}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bar.String(), "100% [") || !strings.HasSuffix(bar.String(), "\n") {
		t.Errorf("progress output %q", bar.String())
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
