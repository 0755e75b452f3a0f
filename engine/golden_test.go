package engine_test

// Golden logits: a guard for restructuring the engine.
//
// Why this file exists: the engine is about to be reshaped (one transformer block for
// decode, batched steps and calibration; weight types behind one interface; model families
// as data) and none of that may change a number a user sees. TestGolden runs every model
// and weight type mole runs, and every type mole writes (made from a real model through
// the public API: Quantize, SetMWQ, SetExpertBits, ConvertMoLE, ConvertMoLEStream,
// WriteGGUF, bench.GenerateGGUF), on a fixed prompt plus a few greedy steps, once through
// State.Forward token by token (decode) and once through Batch.Forward (the prompt in two
// chunks beside a second sequence, then one token of each per step), and compares a
// SHA-256 of the float32 bits of every logit vector with testdata/golden-logits.json.
// It also asserts that the batched logits are the decode logits bit for bit, as Batch
// promises (batch.go: a sequence's numbers do not depend on what shares its step).
//
// The recorded numbers are the engine's own, taken on the commit that added them: they
// are not a reference of correctness. Correctness is checked elsewhere, against PyTorch
// (kjv_test.go, ../shared/models/*/reference.json) and llama.cpp (gguf_test.go,
// greedy-llamacpp.txt), with tolerances. This test has no tolerance: any change of any
// bit fails it, naming the case, the mode (decode or batch) and both hashes.
//
// Updating: when a change is meant to alter numbers (a new kernel, a different summation
// order, a quantizer fix), say so in its commit and re-record on each kernel path:
//
//	MOLE_GOLDEN_UPDATE=1 go test ./engine -run TestGolden -count=1
//	MOLE_GOLDEN_UPDATE=1 MOLE_ISA=avx2 go test ./engine -run TestGolden -count=1
//	MOLE_GOLDEN_UPDATE=1 MOLE_ISA=generic go test ./engine -run TestGolden -count=1
//	(and MOLE_GOLDEN_ALL=1 with each, for the kjv-moe quantized cases)
//
// An update rewrites only the entries of the cases it ran under the running kernel path
// (kernels.Active()); entries of skipped cases and of other paths are kept, and entries
// of cases no longer defined are dropped. The file is written to a temporary name and
// renamed. Review the diff: a case whose hash changed without reason is the bug. Besides
// the engine, the inputs are: the prompt below, the calibration texts (docs/stories-calib.txt
// and quant.BuiltinCalibration), the tokenizers (checked first: a changed prompt encoding
// is reported as such) and bench.GenerateGGUF's random weights.
//
// Kernel paths: hashes are recorded per ISA (kernels.Active(): avx512, avx2 and generic
// were recorded, on one AVX-512 machine with MOLE_ISA; avxvnni is held to avx2's entries,
// see goldenFallback; a path with no entries, such as neon, skips with a message until
// they are recorded there). What recording them showed: the integer products are
// bit-identical on every path, but F32/F16/BF16 dot products and softmax (a float64 exp
// on the generic path, a float32 polynomial on the SIMD paths; attention uses both in
// every model) carry each path's rounding. So every case's logits differ between the
// three paths, including mole's int8 types (their per-token activation scale is a
// float32, which passes a last-bit difference on), except the cases whose products all
// take llama.cpp's Q8_0 activations (kjv-moe-gguf-q8_0 and -q4_0-pure, split4-convert-*,
// *-mole-q8_0): their F16 block scales absorbed the differences on these prompts, which
// is luck of the data, not a contract. The greedy tokens agree on every path (except
// kjv-moe-mole-a8w4). Files written: WriteGGUF, plain ConvertMoLE and Quantize f16/rtn4
// give the same bytes on every path; so do q8/a8w4 of split4, whose routers are zero;
// whatever is fitted to float statistics (calibration through float routers, MWQ's GPTQ,
// ConvertMoLE --fit, ConvertMoLEStream's float32 Gram matrix) gives different bytes per
// path. Each entry's file_sha256 records which file the logits came from.
//
// Thread count does not enter: the pool splits rows, not sums, so GOMAXPROCS=1 and 2 give
// the same bits, files included (checked with -cpu 1 when the hashes were recorded).
//
// Cost: the default run uses the embedded model, kjv-moe from ../shared/models for the
// float and llama.cpp GGUF files, the small stories260K(-moe) for everything mole writes
// by quantizing or converting, and generated tiny models (bench.GenerateGGUF) for the
// families no stored model has. MOLE_GOLDEN_ALL=1 (or MOLE_QUALITY=1) adds the same
// schemes made from kjv-moe, which take longer. Measured on the 2-core machine that
// recorded them: the default run about 8 s on AVX-512 (20 s generic), the whole run 5 to 7
// minutes on AVX-512 and 8.5 on generic (each MWQ fit of kjv-moe 1.5 to 4 minutes). Cases
// needing ../shared/models skip with a message when it is absent (a fresh clone); the
// embedded and generated cases always run.
//
// Not covered because mole refuses them (they are in ../shared/models for other tests):
// deepseek-kjv and gptoss-kjv (architectures deepseek2 and gpt-oss), kjv-moe's K-quant,
// IQ4_XS and MXFP4 GGUF files, and stories260K.bin (llama2.c format).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mole-llm/mole/bench"
	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/engine/defaultmodel"
	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/loader/sharedmodels"
	"github.com/mole-llm/mole/quant"
)

const (
	goldenFile = "testdata/golden-logits.json"

	// The prompt: the first goldenPromptLen tokens (BOS included) of goldenPrompt, then
	// goldenSteps greedy tokens. Tokenizers with small vocabularies split the sentence
	// finer; every case still runs goldenPromptLen tokens.
	goldenPrompt    = "And God said, Let there be light: and there was light."
	goldenPromptLen = 12
	goldenSteps     = 4

	// The second sequence of the batched run, which only has to be there.
	goldenOther    = "In the beginning God created the heaven and the earth."
	goldenOtherLen = 9
	// The main prompt goes in two chunks: tokens [0, goldenChunk) with the other
	// sequence's whole prompt, then the rest beside the other sequence's first step.
	goldenChunk = 7
	goldenCtx   = 32
)

// goldenFileData is testdata/golden-logits.json.
type goldenFileData struct {
	About  []string               `json:"about"`
	Prompt string                 `json:"prompt"`
	Steps  int                    `json:"greedy_steps"`
	Cases  map[string]*goldenCase `json:"cases"`
}

type goldenCase struct {
	What   string                  `json:"what"`
	Prompt []int32                 `json:"prompt_ids"`
	ISA    map[string]*goldenEntry `json:"isa"`
}

// goldenEntry is what one kernel path gives for one case.
type goldenEntry struct {
	Greedy []int32 `json:"greedy_ids"` // the goldenSteps tokens decode chose
	Decode string  `json:"decode"`     // SHA-256 of every position's logits, State.Forward
	Batch  string  `json:"batch"`      // the same through Batch.Forward
	// File is the SHA-256 of the model file the case wrote (quantized, converted or
	// generated; empty for stored models): when the logits differ, it tells whether the
	// writer's output changed or only the forward pass.
	File string `json:"file_sha256,omitempty"`
}

var goldenAbout = []string{
	"Written by TestGolden (engine/golden_test.go) with MOLE_GOLDEN_UPDATE=1: a restructuring guard, not a reference of correctness.",
	"Per case and kernel path (MOLE_ISA / kernels.Active()): SHA-256 of the little-endian float32 bits of the logits at every prompt",
	"position and greedy step, concatenated in order, through State.Forward (decode) and Batch.Forward (batch), and the greedy tokens.",
}

// goldenSpec is one case: how to get its model.
type goldenSpec struct {
	name string
	what string
	all  bool // only with MOLE_GOLDEN_ALL=1 or MOLE_QUALITY=1
	open func(t *testing.T, w *goldenWork) *engine.Model
}

// goldenWork holds what several cases share: files written once per run.
type goldenWork struct {
	dir    string
	mu     sync.Mutex
	files  map[string]string // name -> path
	sums   map[string]string // path -> SHA-256 of the file
	loaded string            // the written file the current case loaded ("" for stored models)
}

// load loads path, a file w wrote, as the current case's model and remembers its SHA-256.
func (w *goldenWork) load(t *testing.T, path string) *engine.Model {
	t.Helper()
	w.mu.Lock()
	if _, ok := w.sums[path]; !ok {
		data, err := os.ReadFile(path)
		if err != nil {
			w.mu.Unlock()
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		w.sums[path] = hex.EncodeToString(sum[:])
	}
	w.loaded = w.sums[path]
	w.mu.Unlock()
	return goldenLoad(t, path)
}

// file returns the path of the file called name, writing it with write the first time.
func (w *goldenWork) file(t *testing.T, name string, write func(path string)) string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.files[name]; ok {
		return p
	}
	p := filepath.Join(w.dir, name)
	t0 := time.Now()
	write(p)
	t.Logf("wrote %s in %v", name, time.Since(t0).Round(time.Millisecond))
	w.files[name] = p
	return p
}

// goldenLoad opens and loads path; both are closed when t ends.
func goldenLoad(t *testing.T, path string) *engine.Model {
	t.Helper()
	lm, err := loader.Open(path)
	return goldenLoaded(t, lm, err)
}

func goldenLoaded(t *testing.T, lm *loader.Model, err error) *engine.Model {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	m, err := engine.Load(lm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// goldenShared returns ../shared/models/rel, skipping t when it is absent.
func goldenShared(t *testing.T, rel string) string {
	t.Helper()
	return sharedmodels.Path(t, rel)
}

func goldenSharedModel(rel string) func(*testing.T, *goldenWork) *engine.Model {
	return func(t *testing.T, _ *goldenWork) *engine.Model { return goldenLoad(t, goldenShared(t, rel)) }
}

const (
	goldenKJV     = "kjv-moe"
	goldenSplit4  = "stories260K-moe/stories260K-moe-split4-top4.gguf"
	goldenDup4    = "stories260K-moe/stories260K-moe-dup4-top2.gguf"
	goldenStories = "stories260K/stories260K.gguf"
)

// goldenBase names the files made from source.
func goldenBase(source string) string {
	return strings.TrimSuffix(filepath.Base(source), ".gguf")
}

// goldenCalib returns the calibration tokens `mole quantize` would use for source: the
// built-in KJV text for kjv-moe, docs/stories-calib.txt for the stories models (as
// mwq_stories_test.go and README's stories table do).
func goldenCalib(t *testing.T, m *engine.Model, stories bool) []int32 {
	t.Helper()
	if !stories {
		return m.Tok.Encode(quant.BuiltinCalibration, false, false)
	}
	b, err := os.ReadFile(filepath.Join("..", "docs", "stories-calib.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return m.Tok.Encode(string(b), false, false)
}

// quantized returns a case whose model is source quantized with scheme (one of
// engine.Schemes or an MWQ scheme), read at bits when bits > 0 (MWQ).
func quantized(source, scheme string, router loader.DType, bits int) func(*testing.T, *goldenWork) *engine.Model {
	stories := source != goldenKJV
	return func(t *testing.T, w *goldenWork) *engine.Model {
		src := goldenShared(t, source)
		key := fmt.Sprintf("%s-%s-router%v.gguf", goldenBase(source), scheme, router)
		path := w.file(t, key, func(path string) {
			m := goldenLoad(t, src)
			o := engine.QuantizeOptions{Router: router, CalibName: "golden", Window: 256}
			if ok, err := engine.SetMWQ(&o, scheme); err != nil {
				t.Fatal(err)
			} else if !ok {
				o.Scheme = scheme
			}
			o.Calib = goldenCalib(t, m, stories)
			if _, err := engine.Quantize(context.Background(), m, path, o); err != nil {
				t.Fatal(err)
			}
		})
		m := w.load(t, path)
		if bits > 0 {
			if got := m.SetExpertBits([]int{bits}); !slices.Contains(got, bits) {
				t.Fatalf("SetExpertBits(%d) gave %v", bits, got)
			}
		}
		return m
	}
}

// moleRank is the latent rank of the MoLE cases: half of stories260K's width of 64, and
// of kjv-moe's 256.
func moleRank(source string) int {
	if source == goldenKJV {
		return 128
	}
	return 32
}

// moleFile returns the path of source converted by ConvertMoLE with o and written as dt
// (convert-mole without --stream).
func moleFile(t *testing.T, w *goldenWork, source, tag string, o engine.MoLEOptions, dt loader.DType) string {
	src := goldenShared(t, source)
	return w.file(t, fmt.Sprintf("%s-mole-%s-%v.gguf", goldenBase(source), tag, dt), func(path string) {
		m := goldenLoad(t, src)
		if o.Fit > 0 {
			o.Calib = goldenCalib(t, m, source != goldenKJV)
			o.Window = 256
		}
		cm, rep, err := engine.ConvertMoLE(context.Background(), m, o)
		if err != nil {
			t.Fatal(err)
		}
		defer cm.Close()
		if err := engine.WriteGGUFWith(cm, path, engine.GGUFOptions{DType: dt, Meta: rep.MoLEMeta(o)}); err != nil {
			t.Fatal(err)
		}
	})
}

func moleCase(source, tag string, o engine.MoLEOptions, dt loader.DType) func(*testing.T, *goldenWork) *engine.Model {
	return func(t *testing.T, w *goldenWork) *engine.Model {
		return w.load(t, moleFile(t, w, source, tag, o, dt))
	}
}

// moleQuantized is the plain MoLE conversion of source (F32) quantized with scheme.
func moleQuantized(source, scheme string) func(*testing.T, *goldenWork) *engine.Model {
	return func(t *testing.T, w *goldenWork) *engine.Model {
		f32 := moleFile(t, w, source, "plain", engine.MoLEOptions{Rank: moleRank(source), Groups: 1}, loader.F32)
		path := w.file(t, fmt.Sprintf("%s-mole-%s.gguf", goldenBase(source), scheme), func(path string) {
			m := goldenLoad(t, f32)
			o := engine.QuantizeOptions{Scheme: scheme, CalibName: "golden", Window: 256, Calib: goldenCalib(t, m, source != goldenKJV)}
			if _, err := engine.Quantize(context.Background(), m, path, o); err != nil {
				t.Fatal(err)
			}
		})
		return w.load(t, path)
	}
}

// moleStream is source converted by ConvertMoLEStream (convert-mole --stream) as dt. It
// reads GGUF only: kjv-moe comes from llama.cpp's F16 file.
func moleStream(source string, dt loader.DType) func(*testing.T, *goldenWork) *engine.Model {
	return func(t *testing.T, w *goldenWork) *engine.Model {
		rel := source
		if source == goldenKJV {
			rel = "kjv-moe-gguf/kjv-moe-F16.gguf"
		}
		src := goldenShared(t, rel)
		path := w.file(t, fmt.Sprintf("%s-mole-stream-%v.gguf", goldenBase(source), dt), func(path string) {
			m := goldenLoad(t, src)
			if _, err := engine.ConvertMoLEStream(context.Background(), m, path, engine.MoLEOptions{Rank: moleRank(source)}, dt); err != nil {
				t.Fatal(err)
			}
		})
		return w.load(t, path)
	}
}

// rewritten is a model written by engine.WriteGGUF (mole convert) as dt.
func rewritten(load func(*testing.T, *goldenWork) *engine.Model, name string, dt loader.DType) func(*testing.T, *goldenWork) *engine.Model {
	return func(t *testing.T, w *goldenWork) *engine.Model {
		path := w.file(t, fmt.Sprintf("%s-%v.gguf", name, dt), func(path string) {
			if err := engine.WriteGGUF(load(t, w), path, dt); err != nil {
				t.Fatal(err)
			}
		})
		return w.load(t, path)
	}
}

func embedded(t *testing.T, _ *goldenWork) *engine.Model {
	lm, err := defaultmodel.Open()
	return goldenLoaded(t, lm, err)
}

// generated is bench's tiny-moe shape in the given architecture and type: random weights
// (fixed seed), for the families no stored model has.
func generated(arch string, dt loader.DType) func(*testing.T, *goldenWork) *engine.Model {
	return func(t *testing.T, w *goldenWork) *engine.Model {
		return w.load(t, generatedFile(t, w, arch, dt))
	}
}

func generatedFile(t *testing.T, w *goldenWork, arch string, dt loader.DType) string {
	return w.file(t, fmt.Sprintf("gen-tiny-%s-%v.gguf", arch, dt), func(path string) {
		shape, err := bench.PresetByName("tiny-moe")
		if err != nil {
			t.Fatal(err)
		}
		if err := bench.GenerateGGUF(path, bench.GenOptions{Shape: shape, Arch: arch, Type: dt, Seed: 7}); err != nil {
			t.Fatal(err)
		}
	})
}

// generatedQuantized is a generated model quantized with scheme (calibrated on the
// built-in text, which its vocabulary encodes byte by byte).
func generatedQuantized(arch, scheme string) func(*testing.T, *goldenWork) *engine.Model {
	return func(t *testing.T, w *goldenWork) *engine.Model {
		src := generatedFile(t, w, arch, loader.F32)
		path := w.file(t, fmt.Sprintf("gen-tiny-%s-%s.gguf", arch, scheme), func(path string) {
			m := goldenLoad(t, src)
			calib := m.Tok.Encode(quant.BuiltinCalibration, false, false)
			o := engine.QuantizeOptions{Scheme: scheme, CalibName: "golden", Window: 128, Calib: calib[:min(len(calib), 1024)]}
			if _, err := engine.Quantize(context.Background(), m, path, o); err != nil {
				t.Fatal(err)
			}
		})
		return w.load(t, path)
	}
}

// goldenSpecs lists the cases. Names are stable keys of golden-logits.json.
func goldenSpecs() []goldenSpec {
	specs := []goldenSpec{
		// Models as stored.
		{name: "embedded-kjv-moe-f16", what: "the embedded model: kjv-moe as F16 safetensors (HF, rotate-half RoPE)", open: embedded},
		{name: "kjv-moe-f32", what: "../shared kjv-moe: F32 safetensors (HF)", open: goldenSharedModel(goldenKJV)},
		{name: "kjv-moe-gguf-f16", what: "llama.cpp's converter: F16 GGUF (interleaved RoPE)", open: goldenSharedModel("kjv-moe-gguf/kjv-moe-F16.gguf")},
		{name: "kjv-moe-gguf-q8_0", what: "llama-quantize Q8_0", open: goldenSharedModel("kjv-moe-gguf/kjv-moe-Q8_0.gguf")},
		{name: "kjv-moe-gguf-q4_0-pure", what: "llama-quantize --pure Q4_0", open: goldenSharedModel("kjv-moe-gguf/kjv-moe-Q4_0-pure.gguf")},
		{name: "stories260K-f32", what: "stories260K GGUF, dense llama, F32", open: goldenSharedModel(goldenStories)},
		{name: "stories260K-moe-split4-top4-f32", what: "stories260K re-packed as 4 distinct experts, all used", open: goldenSharedModel(goldenSplit4)},
		{name: "stories260K-moe-dup4-top2-f32", what: "stories260K re-packed as 4 copies, random router, top-2", open: goldenSharedModel(goldenDup4)},

		// What mole convert (engine.WriteGGUF) writes.
		{name: "embedded-kjv-moe-bf16", what: "the embedded model rewritten by engine.WriteGGUF as BF16", open: rewritten(embedded, "embedded-kjv-moe", loader.BF16)},
		{name: "split4-convert-q8_0", what: "split4 rewritten by engine.WriteGGUF as Q8_0", open: rewritten(goldenSharedModel(goldenSplit4), "split4", loader.Q8_0)},
		{name: "split4-convert-q4_0", what: "split4 rewritten by engine.WriteGGUF as Q4_0", open: rewritten(goldenSharedModel(goldenSplit4), "split4", loader.Q4_0)},

		// Families no stored model has: bench.GenerateGGUF's tiny-moe (random weights).
		{name: "gen-mixtral-bf16", what: "generated tiny-moe, mixtral, BF16", open: generated("mixtral", loader.BF16)},
		{name: "gen-qwen2moe-bf16", what: "generated tiny-moe, qwen2moe (qkv bias, shared expert), BF16", open: generated("qwen2moe", loader.BF16)},
		{name: "gen-qwen3moe-bf16", what: "generated tiny-moe, qwen3moe (per-head q/k norm), BF16", open: generated("qwen3moe", loader.BF16)},
		{name: "gen-olmoe-bf16", what: "generated tiny-moe, olmoe (full q/k norm), BF16", open: generated("olmoe", loader.BF16)},
		{name: "gen-llama-bf16", what: "generated tiny-moe shape, dense llama, BF16", open: generated("llama", loader.BF16)},
		{name: "gen-qwen2moe-q8", what: "generated qwen2moe (F32) quantized q8: the int8 path with qkv bias and shared expert", open: generatedQuantized("qwen2moe", "q8")},
		{name: "gen-qwen3moe-q8", what: "generated qwen3moe (F32) quantized q8", open: generatedQuantized("qwen3moe", "q8")},
		{name: "gen-olmoe-q8", what: "generated olmoe (F32) quantized q8", open: generatedQuantized("olmoe", "q8")},
		{name: "gen-llama-rtn4", what: "generated dense llama (F32) quantized rtn4", open: generatedQuantized("llama", "rtn4")},
	}
	// What mole quantize and convert-mole write, from stories260K-moe by default and from
	// kjv-moe with MOLE_GOLDEN_ALL=1.
	for _, src := range []struct {
		prefix, path, desc string
		all                bool
	}{
		{"split4", goldenSplit4, "stories260K-moe split4-top4 (calibration: docs/stories-calib.txt)", false},
		{"kjv-moe", goldenKJV, "kjv-moe F32 (calibration: the built-in text; --stream from kjv-moe-F16.gguf)", true},
	} {
		add := func(name, what string, open func(*testing.T, *goldenWork) *engine.Model) {
			specs = append(specs, goldenSpec{name: src.prefix + "-" + name, what: src.desc + ": " + what, all: src.all, open: open})
		}
		for _, s := range []string{"f16", "q8", "a8w4", "rtn4"} {
			add("quantize-"+s, "Quantize --type "+s, quantized(src.path, s, 0, 0))
		}
		for _, b := range []int{2, 3, 4} {
			add(fmt.Sprintf("mwq24-%dbit", b), fmt.Sprintf("Quantize --type mwq24, read at %d bits", b), quantized(src.path, "mwq24", 0, b))
		}
		for _, b := range []int{5, 8} {
			add(fmt.Sprintf("mwq58-%dbit", b), fmt.Sprintf("Quantize --type mwq58, read at %d bits", b), quantized(src.path, "mwq58", 0, b))
		}
		r := moleRank(src.path)
		add("mole-f32", fmt.Sprintf("ConvertMoLE --rank %d, written F32", r), moleCase(src.path, "plain", engine.MoLEOptions{Rank: r, Groups: 1}, loader.F32))
		add("mole-q8_0", fmt.Sprintf("ConvertMoLE --rank %d --type q8_0", r), moleCase(src.path, "plain", engine.MoLEOptions{Rank: r, Groups: 1}, loader.Q8_0))
		add("mole-fit-f16", fmt.Sprintf("ConvertMoLE --rank %d --groups 2 --fit 1 --fit-cg 2 (calibrated), written F16", r),
			moleCase(src.path, "fit", engine.MoLEOptions{Rank: r, Groups: 2, Fit: 1, FitCG: 2}, loader.F16))
		add("mole-stream-f16", fmt.Sprintf("ConvertMoLEStream --rank %d, F16", r), moleStream(src.path, loader.F16))
		add("mole-a8w4", fmt.Sprintf("ConvertMoLE --rank %d then Quantize --type a8w4", r), moleQuantized(src.path, "a8w4"))
		add("mole-q8", fmt.Sprintf("ConvertMoLE --rank %d then Quantize --type q8", r), moleQuantized(src.path, "q8"))
	}
	// Routers at 8 bits (QuantizeOptions.Router), on the model whose router is not zero
	// (split4's is). The scheme is q8: an MWQ fit of dup4's 172-wide experts costs 10 s.
	specs = append(specs, goldenSpec{name: "dup4-quantize-q8-router-q8_0", what: "stories260K-moe dup4-top2: Quantize --type q8 --router q8_0",
		open: quantized(goldenDup4, "q8", loader.Q8_0, 0)})
	return specs
}

// goldenRun is what one case gives on this kernel path.
type goldenRun struct {
	prompt         []int32
	entry          goldenEntry
	decode, batch  [][]float32
	firstDiffer    int // first position whose batched logits differ from decode (-1: none)
	firstDifferIdx int
}

// goldenPromptIDs returns the first n tokens of text, BOS included.
func goldenPromptIDs(m *engine.Model, text string, n int) []int32 {
	ids := m.Tok.Encode(text, true, false)
	return ids[:min(n, len(ids))]
}

// runGolden computes the decode and batched logits of m.
func runGolden(t *testing.T, m *engine.Model) goldenRun {
	t.Helper()
	prompt := goldenPromptIDs(m, goldenPrompt, goldenPromptLen)
	other := goldenPromptIDs(m, goldenOther, goldenOtherLen)
	if len(prompt) <= goldenChunk {
		t.Fatalf("prompt of %d tokens: the batched run needs more than %d", len(prompt), goldenChunk)
	}
	r := goldenRun{prompt: prompt, firstDiffer: -1}

	// Decode: State.Forward token by token.
	s := m.NewState(goldenCtx)
	var lg []float32
	for i, tok := range prompt {
		lg = s.Forward(tok, i)
		r.decode = append(r.decode, slices.Clone(lg))
	}
	for i := range goldenSteps {
		next := argmax(lg)
		r.entry.Greedy = append(r.entry.Greedy, next)
		lg = s.Forward(next, len(prompt)+i)
		r.decode = append(r.decode, slices.Clone(lg))
	}

	// Batch: step 1 holds prompt[:goldenChunk] and the other sequence's whole prompt;
	// step 2 the other sequence's first greedy token and then the rest of the prompt;
	// every later step one greedy token of each (the main sequence first).
	b := m.NewBatch(goldenChunk+len(other), goldenCtx)
	sMain, sOther := m.NewState(goldenCtx), m.NewState(goldenCtx)
	step := func(its []engine.BatchItem) (mainLogits [][]float32, otherLast []float32) {
		b.Forward(its)
		for i, it := range its {
			switch {
			case it.State == sMain:
				mainLogits = append(mainLogits, slices.Clone(b.Logits(i)))
			case it.Wants:
				otherLast = b.Logits(i)
			}
		}
		return mainLogits, otherLast
	}
	var its []engine.BatchItem
	for i := range goldenChunk {
		its = append(its, engine.BatchItem{State: sMain, Token: prompt[i], Pos: i, Wants: true})
	}
	for i, tok := range other {
		its = append(its, engine.BatchItem{State: sOther, Token: tok, Pos: i, Wants: i == len(other)-1})
	}
	mainLg, otherLg := step(its)
	r.batch = append(r.batch, mainLg...)
	otherPos := len(other)
	its = append(its[:0], engine.BatchItem{State: sOther, Token: argmax(otherLg), Pos: otherPos, Wants: true})
	otherPos++
	for i := goldenChunk; i < len(prompt); i++ {
		its = append(its, engine.BatchItem{State: sMain, Token: prompt[i], Pos: i, Wants: true})
	}
	mainLg, otherLg = step(its)
	r.batch = append(r.batch, mainLg...)
	for i := range goldenSteps {
		its = append(its[:0],
			engine.BatchItem{State: sMain, Token: argmax(r.batch[len(r.batch)-1]), Pos: len(prompt) + i, Wants: true},
			engine.BatchItem{State: sOther, Token: argmax(otherLg), Pos: otherPos, Wants: true})
		otherPos++
		mainLg, otherLg = step(its)
		r.batch = append(r.batch, mainLg...)
	}

	r.entry.Decode, r.entry.Batch = hashLogits(r.decode), hashLogits(r.batch)
	for p := range r.decode {
		for j, v := range r.decode[p] {
			if math.Float32bits(v) != math.Float32bits(r.batch[p][j]) {
				r.firstDiffer, r.firstDifferIdx = p, j
				return r
			}
		}
	}
	return r
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// hashLogits is the SHA-256 of the little-endian float32 bits of every vector, in order.
func hashLogits(vs [][]float32) string {
	h := sha256.New()
	var buf []byte
	for _, v := range vs {
		buf = buf[:0]
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readGolden(t *testing.T) *goldenFileData {
	t.Helper()
	g := &goldenFileData{Cases: map[string]*goldenCase{}}
	data, err := os.ReadFile(goldenFile)
	if os.IsNotExist(err) {
		return g
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, g); err != nil {
		t.Fatalf("%s: %v", goldenFile, err)
	}
	if g.Cases == nil {
		g.Cases = map[string]*goldenCase{}
	}
	return g
}

var (
	goldenIntList = regexp.MustCompile(`\[[\s\d,-]*\]`)
	goldenSpace   = regexp.MustCompile(`\s+`)
)

func writeGolden(t *testing.T, g *goldenFileData) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	// Token lists on one line each, so that a diff shows one line per changed entry.
	out := goldenIntList.ReplaceAllFunc(buf.Bytes(), func(b []byte) []byte {
		return bytes.ReplaceAll(goldenSpace.ReplaceAll(b, nil), []byte(","), []byte(", "))
	})
	if err := loader.WriteFileAtomic(goldenFile, func(w io.Writer) error {
		_, err := w.Write(out)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", goldenFile)
}

// goldenFallback names, for a kernel path with no entries of its own, the path whose
// entries it must match: AVX-VNNI runs AVX2's float kernels (kernels.floatPath) and
// int8 products whose bits are the same on every path (docs/algorithms.md §5.1). No
// machine used so far had AVX-VNNI without AVX-512; if this ever fails there, record
// the path's own entries with MOLE_GOLDEN_UPDATE=1.
var goldenFallback = map[string]string{"avxvnni": "avx2"}

var goldenFallbackWhy = map[string]string{"avxvnni": "the same float kernels; int8 products are bit-identical across paths"}

func goldenAll() bool {
	return os.Getenv("MOLE_GOLDEN_ALL") == "1" || os.Getenv("MOLE_QUALITY") == "1"
}

// TestGolden compares every case's logits with testdata/golden-logits.json (see the top
// of this file); MOLE_GOLDEN_UPDATE=1 records them instead.
func TestGolden(t *testing.T) {
	update := os.Getenv("MOLE_GOLDEN_UPDATE") == "1"
	isa := kernels.Active().String()
	g := readGolden(t)
	specs := goldenSpecs()
	w := &goldenWork{dir: t.TempDir(), files: map[string]string{}, sums: map[string]string{}}
	var mu sync.Mutex // guards g (subtests run one at a time; the lock documents it)
	t0 := time.Now()
	for _, sp := range specs {
		t.Run(sp.name, func(t *testing.T) {
			if sp.all && !goldenAll() {
				t.Skip("quantizes kjv-moe: runs with MOLE_GOLDEN_ALL=1 (or MOLE_QUALITY=1)")
			}
			t1 := time.Now()
			w.loaded = ""
			m := sp.open(t, w)
			tLoad := time.Since(t1)
			r := runGolden(t, m)
			r.entry.File = w.loaded
			t.Logf("%s, %d threads: greedy %v, decode %.12s…, batch %.12s… (model %v, run %v)", isa, m.Threads(), r.entry.Greedy, r.entry.Decode, r.entry.Batch,
				tLoad.Round(time.Millisecond), (time.Since(t1) - tLoad).Round(time.Millisecond))
			if r.firstDiffer >= 0 {
				p, j := r.firstDiffer, r.firstDifferIdx
				t.Errorf("batched logits differ from decode (Batch promises Forward's bits): position %d, logit %d: batch %v, decode %v",
					p, j, r.batch[p][j], r.decode[p][j])
			}
			mu.Lock()
			defer mu.Unlock()
			c := g.Cases[sp.name]
			if update {
				if c == nil || !slices.Equal(c.Prompt, r.prompt) {
					// A new prompt makes every path's old entry meaningless.
					c = &goldenCase{ISA: map[string]*goldenEntry{}}
					g.Cases[sp.name] = c
				}
				c.What, c.Prompt = sp.what, r.prompt
				e := r.entry
				c.ISA[isa] = &e
				return
			}
			if c == nil {
				t.Fatalf("no golden entry for case %s: record it with MOLE_GOLDEN_UPDATE=1 (see golden_test.go)", sp.name)
			}
			if !slices.Equal(c.Prompt, r.prompt) {
				t.Fatalf("%s: the prompt encodes as %v, recorded %v: the tokenizer changed, so the logits cannot be compared", sp.name, r.prompt, c.Prompt)
			}
			want := c.ISA[isa]
			if alt := goldenFallback[isa]; want == nil && c.ISA[alt] != nil {
				t.Logf("no hashes recorded for %s: comparing with %s's (%s)", isa, alt, goldenFallbackWhy[isa])
				want = c.ISA[alt]
			}
			if want == nil {
				have := make([]string, 0, len(c.ISA))
				for k := range c.ISA {
					have = append(have, k)
				}
				sort.Strings(have)
				t.Skipf("%s: no hashes recorded for kernel path %s (have %v): record them on this path with MOLE_GOLDEN_UPDATE=1", sp.name, isa, have)
			}
			file := ""
			if r.entry.File != want.File {
				file = fmt.Sprintf("; the file it wrote differs too (SHA-256 %s, recorded %s): the writer's output changed", r.entry.File, want.File)
			} else if r.entry.File != "" {
				file = "; the file it wrote is the recorded one: the forward pass changed"
			}
			if r.entry.Decode != want.Decode {
				t.Errorf("%s [%s] decode: logits hash %s, recorded %s (greedy %v, recorded %v)%s", sp.name, isa, r.entry.Decode, want.Decode, r.entry.Greedy, want.Greedy, file)
			}
			if r.entry.Batch != want.Batch {
				t.Errorf("%s [%s] batch: logits hash %s, recorded %s%s", sp.name, isa, r.entry.Batch, want.Batch, file)
			}
			if r.entry.Decode == want.Decode && r.entry.Batch == want.Batch && r.entry.File != want.File {
				// Not a failure: metadata or layout may change without changing a number.
				t.Logf("%s [%s]: same logits, but the file written differs (SHA-256 %s, recorded %s)", sp.name, isa, r.entry.File, want.File)
			}
		})
	}
	t.Logf("%d cases on %s in %v", len(specs), isa, time.Since(t0).Round(time.Millisecond))
	if update {
		known := map[string]bool{}
		for _, sp := range specs {
			known[sp.name] = true
		}
		for name := range g.Cases {
			if !known[name] {
				delete(g.Cases, name)
			}
		}
		g.About, g.Prompt, g.Steps = goldenAbout, fmt.Sprintf("first %d tokens of %q, then %d greedy steps", goldenPromptLen, goldenPrompt, goldenSteps), goldenSteps
		writeGolden(t, g)
	}
}
