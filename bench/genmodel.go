package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// Shape is a model's size. Presets give real models' shapes; the architecture decides
// which extra parts (biases, q/k norms, a shared expert) a generated file has.
type Shape struct {
	Name        string
	Arch        string // default --arch: the family the shape comes from
	NEmbd       int
	NLayer      int
	NHead       int
	NKVHead     int
	HeadDim     int
	NExpert     int
	NExpertUsed int
	NFFExpert   int // routed expert width; a dense (--arch llama) FFN gets this width too
	Vocab       int
	CtxLen      int
	Doc         string
	Hidden      bool // test-only presets are left out of help texts
}

// Presets are the shapes `mole gen-model --preset` knows.
var Presets = []Shape{
	{Name: "bench-moe", Arch: "mixtral", NEmbd: 1024, NLayer: 8, NHead: 16, NKVHead: 8, HeadDim: 64,
		NExpert: 8, NExpertUsed: 2, NFFExpert: 2816, Vocab: 32000, CtxLen: 4096,
		Doc: "a small Mixtral: hidden 1024, 8 layers, 16 heads (8 KV), 8 experts top-2 of width 2816, vocab 32000"},
	{Name: "olmoe-1b-7b", Arch: "olmoe", NEmbd: 2048, NLayer: 16, NHead: 16, NKVHead: 16, HeadDim: 128,
		NExpert: 64, NExpertUsed: 8, NFFExpert: 1024, Vocab: 50304, CtxLen: 4096,
		Doc: "OLMoE-1B-7B's shape: hidden 2048, 16 layers, 16 heads, 64 experts top-8 of width 1024, vocab 50304"},
	// Qwen3-30B-A3B halved in width and in depth: 32 heads of 128 over hidden 2048 become
	// 16 over 1024 (q is twice the hidden size, as in Qwen3), 4 KV heads become 2, and its
	// 128 experts top-8 of width 768 become 64 of 384; the real vocabulary is kept.
	{Name: "qwen3-moe-mini", Arch: "qwen3moe", NEmbd: 1024, NLayer: 12, NHead: 16, NKVHead: 2, HeadDim: 128,
		NExpert: 64, NExpertUsed: 8, NFFExpert: 384, Vocab: 151936, CtxLen: 40960,
		Doc: "a scaled Qwen3-30B-A3B: hidden 1024, 12 layers, 16 heads of 128 (2 KV), 64 experts top-8 of width 384, vocab 151936"},
	// Small enough for unit tests and CI (a few MB), with every part of the big ones.
	{Name: "tiny-moe", Arch: "mixtral", NEmbd: 128, NLayer: 2, NHead: 4, NKVHead: 2, HeadDim: 32,
		NExpert: 4, NExpertUsed: 2, NFFExpert: 192, Vocab: 512, CtxLen: 512,
		Doc: "a test model of every shape feature at a few MB", Hidden: true},
}

// PresetByName returns the preset called name.
func PresetByName(name string) (Shape, error) {
	var names []string
	for _, p := range Presets {
		if p.Name == name {
			return p, nil
		}
		if !p.Hidden {
			names = append(names, p.Name)
		}
	}
	return Shape{}, fmt.Errorf("unknown preset %q (have %s)", name, strings.Join(names, ", "))
}

// Archs are the --arch values GenerateGGUF writes: every engine family, the MoE ones
// (what gen-model is for) first. "mixtral" is written as llama.cpp writes Mixtral:
// general.architecture "llama" with expert_count.
var Archs = func() []string {
	var moe, dense []string
	for _, name := range engine.Families {
		if f, _ := engine.LookupFamily(name); f.MoE {
			moe = append(moe, name)
		} else {
			dense = append(dense, name)
		}
	}
	return append(moe, dense...)
}()

// GenOptions says what GenerateGGUF writes.
type GenOptions struct {
	Shape Shape
	Arch  string       // one of Archs; "" means Shape.Arch
	Type  loader.DType // weight matrices (F32, F16, BF16, Q8_0, Q4_0); norms, biases and routers are F32
	// Scheme, when set, is one of mole's own schemes (MoleSchemes: q8, a8w4, mwq24,
	// mwq58) and replaces Type: the file holds what `mole quantize --type Scheme` writes
	// (genmole.go).
	Scheme string
	Seed   uint64
	// Progress, when set, is called with the bytes written so far and the file's size as
	// the write goes on, for files of at least ProgressMin bytes; drawing it is the
	// caller's business (mole's command line has one progress bar for every command).
	Progress func(done, total int64)
}

// ProgressMin is the file size from which GenerateGGUF reports its progress.
var ProgressMin int64 = 64 << 20

// progressWriter counts the bytes that pass and reports them.
type progressWriter struct {
	done, total int64
	report      func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.report(p.done, p.total)
	return len(b), nil
}

var fileTypes = map[loader.DType]uint32{loader.F32: 0, loader.F16: 1, loader.Q4_0: 2, loader.Q8_0: 7, loader.BF16: 32}

// ParseType maps --type names (f16, q8_0, ...) to a dtype.
func ParseType(s string) (loader.DType, error) {
	for dt := range fileTypes {
		if strings.EqualFold(s, dt.String()) {
			return dt, nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (want f32, f16, bf16, q8_0 or q4_0)", s)
}

// genTensor is one tensor of a generated file: rows rows of cols values drawn uniformly
// from [-scale, scale] (or all equal to const when scale is 0), stored as dt. Tensors
// of mole's schemes (enc != encPlain) are the matrix matrix of rows x cols, or one of
// its companions, with a row of the companion per row of the matrix.
type genTensor struct {
	name       string
	dt         loader.DType
	shape      []int
	rows, cols int
	scale      float32
	konst      float32
	enc        moleEnc
	matrix     string // the matrix a mole-scheme tensor belongs to
	b1, plane  int    // MWQ: base width, and the plane k of a residual plane
}

// plan lists the tensors of a generated model in llama.cpp's names, in file order.
// With a mole scheme, weight matrices become the scheme's tensors (moleMatrix), the
// embedding and routers F16.
func plan(s Shape, a engine.FamilyInfo, dt loader.DType, scheme string) []genTensor {
	var ts []genTensor
	var mat func(name string, d loader.DType, shape ...int)
	// router is a router's matrix: F32 as llama.cpp (and llama-quantize) keep them, F16
	// as `mole quantize` does.
	router := func(name string, shape ...int) {
		if scheme != "" {
			mat(name, loader.F16, shape...)
		} else {
			mat(name, loader.F32, shape...)
		}
	}
	mat = func(name string, d loader.DType, shape ...int) {
		if scheme != "" && d == dt {
			sc := scheme
			if name == "output.weight" { // the head stays at 8 bits in every int8 scheme
				sc = "q8"
			}
			ts = moleMatrix(ts, sc, name, shape)
			return
		}
		rows := 1
		for _, n := range shape[:len(shape)-1] {
			rows *= n
		}
		cols := shape[len(shape)-1]
		// Uniform on ±sqrt(3/cols) has variance 1/cols: a product keeps a unit-variance
		// input at unit variance, so activations neither vanish nor overflow in F16.
		ts = append(ts, genTensor{name: name, dt: d, shape: shape, rows: rows, cols: cols, scale: float32(math.Sqrt(3 / float64(cols)))})
	}
	vec := func(name string, n int, scale, konst float32) {
		ts = append(ts, genTensor{name: name, dt: loader.F32, shape: []int{n}, rows: 1, cols: n, scale: scale, konst: konst})
	}
	qDim, kvDim := s.NHead*s.HeadDim, s.NKVHead*s.HeadDim
	embDT := dt
	if scheme != "" {
		embDT = loader.F16
	}
	ts = append(ts, genTensor{name: "token_embd.weight", dt: embDT, shape: []int{s.Vocab, s.NEmbd}, rows: s.Vocab, cols: s.NEmbd, scale: 1})
	vec("output_norm.weight", s.NEmbd, 0, 1)
	mat("output.weight", dt, s.Vocab, s.NEmbd)
	for l := range s.NLayer {
		n := func(x string) string { return fmt.Sprintf("blk.%d.%s", l, x) }
		vec(n("attn_norm.weight"), s.NEmbd, 0, 1)
		mat(n("attn_q.weight"), dt, qDim, s.NEmbd)
		mat(n("attn_k.weight"), dt, kvDim, s.NEmbd)
		mat(n("attn_v.weight"), dt, kvDim, s.NEmbd)
		mat(n("attn_output.weight"), dt, s.NEmbd, qDim)
		if a.QKVBias {
			vec(n("attn_q.bias"), qDim, 0.02, 0)
			vec(n("attn_k.bias"), kvDim, 0.02, 0)
			vec(n("attn_v.bias"), kvDim, 0.02, 0)
		}
		switch a.QKNorm {
		case "head":
			vec(n("attn_q_norm.weight"), s.HeadDim, 0, 1)
			vec(n("attn_k_norm.weight"), s.HeadDim, 0, 1)
		case "full":
			vec(n("attn_q_norm.weight"), qDim, 0, 1)
			vec(n("attn_k_norm.weight"), kvDim, 0, 1)
		}
		vec(n("ffn_norm.weight"), s.NEmbd, 0, 1)
		if !a.MoE {
			mat(n("ffn_gate.weight"), dt, s.NFFExpert, s.NEmbd)
			mat(n("ffn_up.weight"), dt, s.NFFExpert, s.NEmbd)
			mat(n("ffn_down.weight"), dt, s.NEmbd, s.NFFExpert)
			continue
		}
		router(n("ffn_gate_inp.weight"), s.NExpert, s.NEmbd)
		mat(n("ffn_gate_exps.weight"), dt, s.NExpert, s.NFFExpert, s.NEmbd)
		mat(n("ffn_up_exps.weight"), dt, s.NExpert, s.NFFExpert, s.NEmbd)
		mat(n("ffn_down_exps.weight"), dt, s.NExpert, s.NEmbd, s.NFFExpert)
		if a.SharedExpert != "" {
			sh := sharedWidth(s)
			vec(n("ffn_gate_inp_shexp.weight"), s.NEmbd, float32(math.Sqrt(3/float64(s.NEmbd))), 0)
			mat(n("ffn_gate_shexp.weight"), dt, sh, s.NEmbd)
			mat(n("ffn_up_shexp.weight"), dt, sh, s.NEmbd)
			mat(n("ffn_down_shexp.weight"), dt, s.NEmbd, sh)
		}
	}
	return ts
}

// sharedWidth is the shared expert's width: as wide as the routed experts one token
// uses, which is Qwen1.5-MoE-A2.7B's ratio (4 × 1408 = 5632).
func sharedWidth(s Shape) int { return s.NExpertUsed * s.NFFExpert }

// ParamCount returns the number of weights a generated model of this shape and arch has.
func ParamCount(s Shape, arch string) (int64, error) {
	a, ok := engine.LookupFamily(arch)
	if !ok {
		return 0, fmt.Errorf("unknown arch %q (want %s)", arch, strings.Join(Archs, ", "))
	}
	var n int64
	for _, t := range plan(s, a, loader.F32, "") {
		n += int64(t.rows) * int64(t.cols)
	}
	return n, nil
}

// NewGGUFWriter builds the writer for a generated model; its tensors are produced while
// the file is written, so memory use stays at a few chunks whatever the model's size.
func NewGGUFWriter(o GenOptions) (*loader.GGUFWriter, error) {
	s := o.Shape
	arch := o.Arch
	if arch == "" {
		arch = s.Arch
	}
	a, ok := engine.LookupFamily(arch)
	if !ok {
		return nil, fmt.Errorf("unknown arch %q (want %s)", arch, strings.Join(Archs, ", "))
	}
	ft, ok := fileTypes[o.Type]
	if o.Scheme != "" {
		if !slices.Contains(MoleSchemes, o.Scheme) {
			return nil, fmt.Errorf("unknown scheme %q (want %s)", o.Scheme, strings.Join(MoleSchemes, ", "))
		}
	} else if !ok {
		return nil, fmt.Errorf("cannot write weights as %v (f32, f16, bf16, q8_0, q4_0)", o.Type)
	}
	if !a.MoE {
		s.NExpert, s.NExpertUsed = 0, 0
	}
	if s.NHead == 0 || s.NKVHead == 0 || s.NHead%s.NKVHead != 0 || s.Vocab < 300 {
		return nil, fmt.Errorf("preset %s: %d heads over %d KV heads, vocab %d: not a usable shape", s.Name, s.NHead, s.NKVHead, s.Vocab)
	}
	w := loader.NewGGUFWriter()
	g := a.GGUFArch
	w.Set("general.architecture", loader.StringValue(g))
	w.Set("general.name", loader.StringValue(fmt.Sprintf("mole random %s %s", s.Name, arch)))
	if o.Scheme == "" {
		w.Set("general.file_type", loader.Uint32Value(ft))
	} else {
		setMoleMeta(w, o.Scheme)
	}
	w.Set("general.quantization_version", loader.Uint32Value(2))
	u := func(key string, v int) { w.Set(g+"."+key, loader.Uint32Value(uint32(v))) }
	u("block_count", s.NLayer)
	u("context_length", s.CtxLen)
	u("embedding_length", s.NEmbd)
	// llama.cpp reads a Mixtral's expert width from feed_forward_length; the Qwen and
	// OLMoE loaders read expert_feed_forward_length (and OLMoE also the former).
	u("feed_forward_length", s.NFFExpert)
	u("attention.head_count", s.NHead)
	u("attention.head_count_kv", s.NKVHead)
	u("attention.key_length", s.HeadDim)
	u("attention.value_length", s.HeadDim)
	u("rope.dimension_count", s.HeadDim)
	u("vocab_size", s.Vocab)
	w.Set(g+".rope.freq_base", loader.Float32Value(float32(a.RopeTheta)))
	w.Set(g+".attention.layer_norm_rms_epsilon", loader.Float32Value(a.NormEps))
	if a.MoE {
		u("expert_count", s.NExpert)
		u("expert_used_count", s.NExpertUsed)
		u("expert_feed_forward_length", s.NFFExpert)
		if a.SharedExpert != "" {
			u("expert_shared_feed_forward_length", sharedWidth(s))
		}
		w.Set(g+".expert_weights_norm", loader.BoolValue(a.NormTopK))
	}
	setVocab(w, s.Vocab)
	for _, t := range plan(s, a, o.Type, o.Scheme) {
		t := t
		if err := w.AddTensorFunc(t.name, t.dt, t.shape, func(out io.Writer) error {
			return fillTensor(out, t, o.Seed)
		}); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// GenerateGGUF writes a random-weight model to path. The file appears only once it is
// complete (temporary file, fsync, rename), and the same options give the same bytes.
func GenerateGGUF(path string, o GenOptions) error {
	return GenerateGGUFContext(context.Background(), path, o)
}

// GenerateGGUFContext is GenerateGGUF stopped by ctx: once it is cancelled the write
// stops within a MiB, the temporary file is removed and path is left as it was.
func GenerateGGUFContext(ctx context.Context, path string, o GenOptions) error {
	w, err := NewGGUFWriter(o)
	if err != nil {
		return err
	}
	size, err := w.Size()
	if err != nil {
		return err
	}
	return loader.WriteFileAtomicContext(ctx, path, func(out io.Writer) error {
		if o.Progress == nil || size < ProgressMin {
			return w.Encode(out)
		}
		return w.Encode(io.MultiWriter(out, &progressWriter{total: size, report: o.Progress}))
	})
}

// setVocab writes a SentencePiece ("llama") vocabulary of n tokens: <unk>, <s>, </s>,
// the 256 byte tokens (so any text encodes through byte fallback) and made-up words.
// Benchmarks never tokenize; the vocabulary is there so that llama.cpp and `mole run`
// accept the file.
func setVocab(w *loader.GGUFWriter, n int) {
	toks := make([]string, 0, n)
	types := make([]int32, 0, n)
	scores := make([]float32, 0, n)
	add := func(s string, ty int32) {
		toks = append(toks, s)
		types = append(types, ty)
		scores = append(scores, -float32(len(scores)))
	}
	add("<unk>", 2) // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
	add("<s>", 3)
	add("</s>", 3)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 6)
	}
	for i := 0; len(toks) < n; i++ {
		add("\u2581"+word(i), 1)
	}
	w.Set("tokenizer.ggml.model", loader.StringValue("llama"))
	w.Set("tokenizer.ggml.tokens", loader.StringsValue(toks))
	w.Set("tokenizer.ggml.scores", loader.Float32sValue(scores))
	w.Set("tokenizer.ggml.token_type", loader.Int32sValue(types))
	w.Set("tokenizer.ggml.unknown_token_id", loader.Uint32Value(0))
	w.Set("tokenizer.ggml.bos_token_id", loader.Uint32Value(1))
	w.Set("tokenizer.ggml.eos_token_id", loader.Uint32Value(2))
	w.Set("tokenizer.ggml.add_bos_token", loader.BoolValue(true))
	w.Set("tokenizer.ggml.add_eos_token", loader.BoolValue(false))
}

// word returns the i-th lowercase string in length-then-alphabetical order (a, b, ...,
// z, aa, ab, ...): distinct for distinct i.
func word(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append(b, byte('a'+(i-1)%26))
	}
	for l, r := 0, len(b)-1; l < r; l, r = l+1, r-1 {
		b[l], b[r] = b[r], b[l]
	}
	return string(b)
}

// chunkElems is how many values one random stream produces. Streams are keyed by the
// seed, the tensor's name and the chunk's index, never by the worker that computes
// them, so the bytes do not depend on how many cores write the file.
const chunkElems = 1 << 20

// fillTensor writes t's encoded rows, generating chunks in parallel and writing them
// in order.
func fillTensor(out io.Writer, t genTensor, seed uint64) error {
	if t.scale == 0 {
		row := make([]float32, t.cols)
		for i := range row {
			row[i] = t.konst
		}
		enc := engine.EncodeRow(nil, t.dt, row)
		for range t.rows {
			if _, err := out.Write(enc); err != nil {
				return err
			}
		}
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(t.name))
	key := h.Sum64()
	gen := newRowGen(t, seed)
	rowsPer := max(1, chunkElems/t.cols)
	nChunks := (t.rows + rowsPer - 1) / rowsPer
	workers := min(runtime.GOMAXPROCS(0), nChunks)
	bufs := make([][]byte, workers)
	for c0 := 0; c0 < nChunks; c0 += workers {
		var wg sync.WaitGroup
		for k := 0; k < workers && c0+k < nChunks; k++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				c := c0 + k
				r := rand.New(rand.NewPCG(seed, key^uint64(c)*0x9e3779b97f4a7c15))
				row := make([]float32, t.cols)
				buf := bufs[k][:0]
				for i := c * rowsPer; i < min((c+1)*rowsPer, t.rows); i++ {
					buf = gen(buf, r, row, i)
				}
				bufs[k] = buf
			}(k)
		}
		wg.Wait()
		for k := 0; k < workers && c0+k < nChunks; k++ {
			if _, err := out.Write(bufs[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// newRowGen returns a function appending one random row of t. Quantized rows are drawn
// as random codes under one block scale per tensor, and F16 rows from a table of 4096
// evenly spread values: the same distribution as quantizing uniform floats, at a tenth
// of the cost (rounding a float to Q4_0 or F16 in Go takes ~15 ns a value, which made a
// 1.2 GB model take minutes to write).
func newRowGen(t genTensor, seed uint64) func(dst []byte, r *rand.Rand, row []float32, i int) []byte {
	if t.enc != encPlain {
		g := newMoleRowGen(t, seed)
		return func(dst []byte, r *rand.Rand, _ []float32, i int) []byte { return g(dst, r, i) }
	}
	switch t.dt {
	case loader.Q4_0:
		// Codes 0..15 give (q-8)*d in [-8d, 7d]: d = scale/8 spans [-scale, scale).
		d := kernels.F32ToF16(t.scale / 8)
		return func(dst []byte, r *rand.Rand, _ []float32, _ int) []byte {
			for range t.cols / kernels.QK {
				dst = binary.LittleEndian.AppendUint16(dst, d)
				dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
				dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
			}
			return dst
		}
	case loader.Q8_0:
		d := kernels.F32ToF16(t.scale / 127)
		return func(dst []byte, r *rand.Rand, _ []float32, _ int) []byte {
			for range t.cols / kernels.QK {
				dst = binary.LittleEndian.AppendUint16(dst, d)
				for range 4 {
					dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
				}
				// -128 is a valid int8 but no Q8_0 quantizer produces it (the range is
				// ±127), and kernels may rely on that: fold it to -127.
				blk := dst[len(dst)-kernels.QK:]
				for i, b := range blk {
					if b == 0x80 {
						blk[i] = 0x81
					}
				}
			}
			return dst
		}
	case loader.F16:
		var table [4096]uint16
		for i := range table {
			table[i] = kernels.F32ToF16((float32(i)+0.5)/2048*t.scale - t.scale)
		}
		return func(dst []byte, r *rand.Rand, _ []float32, _ int) []byte {
			for i := 0; i < t.cols; {
				u := r.Uint64()
				for k := 0; k < 5 && i < t.cols; k, i = k+1, i+1 {
					dst = binary.LittleEndian.AppendUint16(dst, table[u&4095])
					u >>= 12
				}
			}
			return dst
		}
	}
	return func(dst []byte, r *rand.Rand, row []float32, _ int) []byte {
		for i := range row {
			// 24 random bits mapped to [-1, 1).
			row[i] = (float32(r.Uint32()>>8)*(1.0/(1<<23)) - 1) * t.scale
		}
		return engine.EncodeRow(dst, t.dt, row)
	}
}

// PresetHelp lists the visible presets, one per line, for help texts.
func PresetHelp() string {
	var lines []string
	for _, p := range Presets {
		if !p.Hidden {
			lines = append(lines, fmt.Sprintf("  %-15s %s (default --arch %s)", p.Name, p.Doc, p.Arch))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
