package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// allValues has one value of every metadata type, including nested arrays, empty arrays
// and extreme values, for the round-trip tests and the fuzz seeds.
func allValues() []KV {
	return []KV{
		{"general.architecture", StringValue("llama")},
		{"t.u8", Uint8Value(255)},
		{"t.i8", Int8Value(-128)},
		{"t.u16", Uint16Value(65535)},
		{"t.i16", Int16Value(-32768)},
		{"t.u32", Uint32Value(math.MaxUint32)},
		{"t.i32", Int32Value(math.MinInt32)},
		{"t.f32", Float32Value(-1.5e-7)},
		{"t.bool", BoolValue(true)},
		{"t.bool_false", BoolValue(false)},
		{"t.string", StringValue("héllo\x00world")},
		{"t.empty_string", StringValue("")},
		{"t.u64", Uint64Value(math.MaxUint64)},
		{"t.i64", Int64Value(math.MinInt64)},
		{"t.f64", Float64Value(math.Pi)},
		{"t.strings", StringsValue([]string{"<s>", "", "▁the", "\xff"})},
		{"t.f32s", Float32sValue([]float32{0, -1, float32(math.Inf(1)), 3.25})},
		{"t.i32s", Int32sValue([]int32{1, -2, math.MaxInt32})},
		{"t.u8s", ArrayValue(TypeU8, []Value{Uint8Value(1), Uint8Value(200)})},
		{"t.i8s", ArrayValue(TypeI8, []Value{Int8Value(-1)})},
		{"t.u16s", ArrayValue(TypeU16, []Value{Uint16Value(7)})},
		{"t.i16s", ArrayValue(TypeI16, []Value{Int16Value(-7)})},
		{"t.u32s", ArrayValue(TypeU32, []Value{Uint32Value(1 << 31)})},
		{"t.u64s", ArrayValue(TypeU64, []Value{Uint64Value(1 << 63)})},
		{"t.i64s", ArrayValue(TypeI64, []Value{Int64Value(-1 << 40)})},
		{"t.f64s", ArrayValue(TypeF64, []Value{Float64Value(-0.125)})},
		{"t.bools", ArrayValue(TypeBool, []Value{BoolValue(true), BoolValue(false)})},
		{"t.empty", ArrayValue(TypeF32, nil)},
		{"t.nested", ArrayValue(TypeArray, []Value{
			StringsValue([]string{"a b", "c"}),
			Int32sValue([]int32{1, 2, 3}),
			ArrayValue(TypeArray, []Value{Float32sValue([]float32{0.5}), ArrayValue(TypeArray, nil)}),
		})},
	}
}

type testTensor struct {
	name  string
	dt    DType
	shape []int
	data  []byte
}

func testTensors() []testTensor {
	f := make([]float32, 64*3)
	for i := range f {
		f[i] = float32(i)*0.25 - 7
	}
	q80 := make([]byte, 2*34) // 2 blocks of Q8_0
	for i := range q80 {
		q80[i] = byte(i * 7)
	}
	q40 := make([]byte, 3*18)
	for i := range q40 {
		q40[i] = byte(i*13 + 1)
	}
	return []testTensor{
		{"token_embd.weight", F32, []int{3, 64}, F32Bytes(f)},
		{"blk.0.attn_q.weight", F16, []int{2, 3, 4}, F32ToF16Bytes(f[:24])},
		{"blk.0.bf16", BF16, []int{5}, F32ToBF16Bytes(f[:5])},
		{"blk.0.q8", Q8_0, []int{64}, q80},
		{"blk.0.q4", Q4_0, []int{3, 32}, q40},
		{"blk.0.exps", F32, []int{2, 1, 3, 1}, F32Bytes(f[:6])},
		{"empty", F32, []int{0, 4}, []byte{}},
	}
}

func buildGGUF(t testing.TB) []byte {
	t.Helper()
	w := NewGGUFWriter()
	for _, kv := range allValues() {
		w.Set(kv.Key, kv.Value)
	}
	for _, tt := range testTensors() {
		if err := w.AddTensor(tt.name, tt.dt, tt.shape, tt.data); err != nil {
			t.Fatal(err)
		}
	}
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGGUFRoundTrip(t *testing.T) {
	b := buildGGUF(t)
	g, err := ParseGGUF("rt.gguf", b)
	if err != nil {
		t.Fatal(err)
	}
	want := allValues()
	if g.Version != 3 || g.Alignment != 32 || len(g.KV) != len(want) {
		t.Fatalf("version %d alignment %d %d KVs", g.Version, g.Alignment, len(g.KV))
	}
	for i, kv := range want {
		got := g.KV[i]
		if got.Key != kv.Key {
			t.Errorf("KV %d: key %q, want %q", i, got.Key, kv.Key)
		}
		if !reflect.DeepEqual(norm(got.Value), norm(kv.Value)) {
			t.Errorf("%s: got %s (%#v), want %s", kv.Key, got.Value, got.Value, kv.Value)
		}
	}
	// Accessors.
	if g.Architecture() != "llama" {
		t.Error("architecture")
	}
	if u, ok := g.Uint("t.u64"); !ok || u != math.MaxUint64 {
		t.Error("u64", u, ok)
	}
	if _, ok := g.Uint("t.i8"); ok {
		t.Error("negative i8 returned by Uint")
	}
	if i, ok := mustGet(g, "t.i64").Int(); !ok || i != math.MinInt64 {
		t.Error("i64")
	}
	if _, ok := mustGet(g, "t.u64").Int(); ok {
		t.Error("MaxUint64 returned by Int")
	}
	if f, ok := g.Float("t.f64"); !ok || f != math.Pi {
		t.Error("f64")
	}
	if f, ok := g.Float("t.u16"); !ok || f != 65535 {
		t.Error("Float of u16")
	}
	if f, ok := g.Float("t.f32"); !ok || float32(f) != -1.5e-7 {
		t.Error("f32")
	}
	if b, ok := mustGet(g, "t.bool").Bool(); !ok || !b {
		t.Error("bool")
	}
	if s, ok := g.String("t.string"); !ok || s != "héllo\x00world" {
		t.Error("string")
	}
	if s, ok := mustGet(g, "t.strings").Strings(); !ok || !reflect.DeepEqual(s, []string{"<s>", "", "▁the", "\xff"}) {
		t.Error("strings", s)
	}
	if f, ok := mustGet(g, "t.f32s").Float32s(); !ok || f[3] != 3.25 || !math.IsInf(float64(f[2]), 1) {
		t.Error("f32s", f)
	}
	if f, ok := mustGet(g, "t.i32s").Float32s(); !ok || f[1] != -2 {
		t.Error("Float32s of i32s", f)
	}
	if a, ok := mustGet(g, "t.u8s").Int32s(); !ok || a[1] != 200 {
		t.Error("Int32s of u8s", a)
	}
	if _, ok := mustGet(g, "t.u32s").Int32s(); ok {
		t.Error("Int32s accepted 1<<31")
	}
	nested := mustGet(g, "t.nested")
	if nested.Len() != 3 || nested.ElemType() != TypeArray {
		t.Fatal("nested", nested)
	}
	el, _ := nested.Array()
	if s, ok := el[0].Strings(); !ok || s[0] != "a b" {
		t.Error("nested strings")
	}
	inner, _ := el[2].Array()
	if f, ok := inner[0].Float32s(); !ok || f[0] != 0.5 || inner[1].Len() != 0 || inner[1].ElemType() != TypeArray {
		t.Error("nested nested", el[2])
	}
	if s := nested.String(); !strings.Contains(s, `"a b"`) {
		t.Error("String():", s)
	}
	if mustGet(g, "t.empty").Len() != 0 {
		t.Error("empty array")
	}

	tts := testTensors()
	if len(g.Tensors) != len(tts) {
		t.Fatalf("%d tensors", len(g.Tensors))
	}
	for i, tt := range tts {
		got := g.Tensors[i]
		if got.Name != tt.name || got.DType != tt.dt || !reflect.DeepEqual(got.Shape, tt.shape) || !bytes.Equal(got.Data, tt.data) {
			t.Errorf("tensor %d: got %v, want %s %v %s", i, got, tt.name, tt.shape, tt.dt)
		}
		if len(got.Data) > 0 && !within(b, got.Data) {
			t.Errorf("%s: not a view", got.Name)
		}
		if len(got.Data) > 0 {
			if start := int64(offsetOf(b, got.Data)); (start-g.DataOffset)%32 != 0 {
				t.Errorf("%s: offset %d not aligned", got.Name, start)
			}
		}
	}
	if len(b)%32 != 0 {
		t.Errorf("file length %d not padded to alignment", len(b))
	}
}

func mustGet(g *GGUFFile, key string) Value {
	v, ok := g.Get(key)
	if !ok {
		panic("missing " + key)
	}
	return v
}

func offsetOf(b, sub []byte) int {
	for i := range b {
		if &b[i] == &sub[0] {
			return i
		}
	}
	return -1
}

// norm turns a Value into a comparable tree (packed and string arrays expanded).
func norm(v Value) any {
	if v.Type() != TypeArray {
		return v
	}
	el, _ := v.Array()
	out := []any{v.ElemType()}
	for _, e := range el {
		out = append(out, norm(e))
	}
	return out
}

func TestGGUFWriterAlignmentAndFile(t *testing.T) {
	dir := t.TempDir()
	w := NewGGUFWriter()
	w.Set("general.alignment", Uint32Value(64))
	w.Set("general.architecture", StringValue("x"))
	w.Set("general.architecture", StringValue("llama")) // replaced in place
	if err := w.AddTensor("a", F32, []int{3}, F32Bytes([]float32{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", F16, []int{2}, F32ToF16Bytes([]float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("a", F32, []int{1}, F32Bytes([]float32{1})); err == nil {
		t.Error("duplicate tensor accepted")
	}
	if err := w.AddTensor("c", F32, []int{2}, F32Bytes([]float32{1})); err == nil {
		t.Error("short data accepted")
	}
	if err := w.AddTensor("d", Q8_0, []int{31}, make([]byte, 34)); err == nil {
		t.Error("partial block accepted")
	}
	if err := w.AddTensor("e", DType(99), []int{1}, []byte{0}); err == nil || !strings.Contains(err.Error(), "99") {
		t.Error("unknown dtype:", err)
	}
	p := filepath.Join(dir, "m.gguf")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.GGUF.Alignment != 64 || len(m.GGUF.KV) != 2 || m.GGUF.Architecture() != "llama" {
		t.Errorf("alignment %d, KV %v", m.GGUF.Alignment, m.GGUF.KV)
	}
	b, _ := m.Tensor("b")
	if f, err := b.Float32s(); err != nil || f[1] != 2 {
		t.Error(f, err)
	}
	if m.GGUF.DataOffset%64 != 0 {
		t.Error("data offset", m.GGUF.DataOffset)
	}
	// Only the final file is left in the directory.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
	// Open on the folder finds the single .gguf.
	m2, err := Open(dir)
	if err != nil || m2.Format != "gguf" {
		t.Fatal(err)
	}
	m2.Close()

	w.Set("general.alignment", Uint32Value(48))
	if err := w.WriteFile(filepath.Join(dir, "bad.gguf")); err == nil {
		t.Error("alignment 48 accepted")
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	var ts []*Tensor
	for _, tt := range testTensors() {
		if tt.dt == Q8_0 || tt.dt == Q4_0 {
			continue
		}
		ts = append(ts, &Tensor{Name: tt.name, DType: tt.dt, Shape: tt.shape, Data: tt.data})
	}
	ts = append(ts,
		&Tensor{Name: "i8", DType: I8, Shape: []int{3}, Data: []byte{1, 2, 255}},
		&Tensor{Name: "i64", DType: I64, Shape: []int{}, Data: make([]byte, 8)}, // a scalar
		&Tensor{Name: `we"ird\name`, DType: I32, Shape: []int{1}, Data: []byte{1, 0, 0, 0}},
	)
	meta := map[string]string{"format": "pt", "note": "a \"quoted\" <value>"}
	p := filepath.Join(dir, "model.safetensors")
	if err := WriteSafetensors(p, ts, meta); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"llama"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{}`), 0o644)
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !reflect.DeepEqual(m.HF.Metadata, meta) {
		t.Errorf("metadata %v", m.HF.Metadata)
	}
	if string(m.HF.ConfigJSON) != `{"model_type":"llama"}` || string(m.HF.TokenizerJSON) != `{}` || m.HF.TokenizerModel != nil {
		t.Error("folder files")
	}
	if len(m.Tensors) != len(ts) {
		t.Fatalf("%d tensors, want %d", len(m.Tensors), len(ts))
	}
	for i, want := range ts {
		got := m.Tensors[i] // written contiguously in order, so data order = given order
		if got.Name != want.Name || got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %d: got %v, want %v", i, got, want)
		}
	}
	raw, _ := os.ReadFile(p)
	hl := int(raw[0]) | int(raw[1])<<8
	if (8+hl)%8 != 0 {
		t.Error("data not 8-byte aligned")
	}
	if err := WriteSafetensors(filepath.Join(dir, "q.safetensors"), []*Tensor{{Name: "q", DType: Q8_0, Shape: []int{32}, Data: make([]byte, 34)}}, nil); err == nil {
		t.Error("Q8_0 accepted by the safetensors writer")
	}
	if _, err := os.Stat(filepath.Join(dir, "q.safetensors")); err == nil {
		t.Error("failed write left a file")
	}
}

func TestFloatHelpers(t *testing.T) {
	src := []float32{0, 1, -2.5, 65504, 1e-3, float32(math.Inf(-1)), 3.14159}
	for _, dt := range []DType{F32, F16, BF16} {
		var b []byte
		switch dt {
		case F32:
			b = F32Bytes(src)
		case F16:
			b = F32ToF16Bytes(src)
		case BF16:
			b = F32ToBF16Bytes(src)
		}
		got, err := (&Tensor{Name: "x", DType: dt, Shape: []int{len(src)}, Data: b}).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range src {
			tol := 0.0
			switch dt {
			case F16:
				tol = math.Abs(float64(want)) / 1024
			case BF16:
				tol = math.Abs(float64(want)) / 128
			}
			if d := math.Abs(float64(got[i] - want)); !(d <= tol) && !(math.IsInf(float64(want), 0) && got[i] == want) {
				t.Errorf("%s: %g -> %g", dt, want, got[i])
			}
		}
	}
	// Round to nearest even, not truncation: 1 + 2^-8 + 2^-9 rounds up in bf16.
	if b := F32ToBF16Bytes([]float32{1 + 1.0/256 + 1.0/512}); b[0] != 0x81 || b[1] != 0x3f {
		t.Errorf("bf16 rounding: % x", b)
	}
	nan := F32ToBF16Bytes([]float32{float32(math.NaN())})
	if f := math.Float32frombits(uint32(nan[0])<<16 | uint32(nan[1])<<24); f == f {
		t.Error("bf16 NaN lost")
	}
}

// writeShardedFolder writes a folder of two shards and an index, as HF tools do.
func writeShardedFolder(t *testing.T, dir string) {
	t.Helper()
	s1 := []*Tensor{
		{Name: "a", DType: F32, Shape: []int{2}, Data: F32Bytes([]float32{1, 2})},
		{Name: "b", DType: BF16, Shape: []int{2, 2}, Data: F32ToBF16Bytes([]float32{1, 2, 3, 4})},
	}
	s2 := []*Tensor{{Name: "c", DType: F16, Shape: []int{3}, Data: F32ToF16Bytes([]float32{5, 6, 7})}}
	if err := WriteSafetensors(filepath.Join(dir, "model-00001-of-00002.safetensors"), s1, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensors(filepath.Join(dir, "model-00002-of-00002.safetensors"), s2, map[string]string{"shard": "2"}); err != nil {
		t.Fatal(err)
	}
	writeIndex(t, dir, map[string]string{
		"a": "model-00001-of-00002.safetensors",
		"b": "model-00001-of-00002.safetensors",
		"c": "model-00002-of-00002.safetensors",
	})
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{}`), 0o644)
	os.WriteFile(filepath.Join(dir, "tokenizer.model"), []byte{0x0a, 0x01}, 0o644)
}

func writeIndex(t *testing.T, dir string, wm map[string]string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 42}, "weight_map": wm})
	if err := os.WriteFile(filepath.Join(dir, hfIndexFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestShardedSafetensors(t *testing.T) {
	dir := t.TempDir()
	writeShardedFolder(t, dir)
	for _, p := range []string{dir, filepath.Join(dir, hfIndexFile)} {
		m, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tn := range m.Tensors {
			names = append(names, tn.Name)
		}
		if !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
			t.Errorf("tensors %v", names)
		}
		if m.HF.Metadata["format"] != "pt" || m.HF.Metadata["shard"] != "2" {
			t.Errorf("metadata %v", m.HF.Metadata)
		}
		if m.HF.ConfigJSON == nil || !bytes.Equal(m.HF.TokenizerModel, []byte{0x0a, 0x01}) {
			t.Error("folder files")
		}
		c, _ := m.Tensor("c")
		if f, err := c.Float32s(); err != nil || f[2] != 7 {
			t.Error(f, err)
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		if err := m.Close(); err != nil { // idempotent
			t.Error(err)
		}
	}
	// One shard opened on its own: just its tensors, plus the folder's files.
	m, err := Open(filepath.Join(dir, "model-00002-of-00002.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 1 || m.HF.ConfigJSON == nil {
		t.Errorf("single shard: %v", m.Tensors)
	}
	m.Close()

	// The same folder in memory.
	files := map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		files[e.Name()], _ = os.ReadFile(filepath.Join(dir, e.Name()))
	}
	mm, err := OpenHFFiles("mem", files)
	if err != nil || len(mm.Tensors) != 3 {
		t.Fatal(err)
	}
}

// GGUF v2 has the same layout as v3 (64-bit counts and lengths); only v1 differed.
func TestGGUFVersion2(t *testing.T) {
	b := buildGGUF(t)
	b[4] = 2
	g, err := ParseGGUF("v2.gguf", b)
	if err != nil {
		t.Fatal(err)
	}
	if g.Version != 2 || len(g.Tensors) != len(testTensors()) {
		t.Errorf("version %d, %d tensors", g.Version, len(g.Tensors))
	}
}

func TestWriteFileAtomicError(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	os.WriteFile(p, []byte("old"), 0o644)
	err := WriteFileAtomic(p, func(w io.Writer) error {
		w.Write(make([]byte, 3<<20)) // more than the buffer, so part reaches the temp file
		return errors.New("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "out.bin") {
		t.Fatalf("error %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Error("failed write changed the file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary file left behind: %d entries", len(ents))
	}
	if err := WriteFileAtomic(p, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Error("write did not replace the file")
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), func(w io.Writer) error { return nil }); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestValueString(t *testing.T) {
	long := make([]int32, 100)
	s := Int32sValue(long).String()
	if !strings.Contains(s, "... (100 i32)") || len(s) > 100 {
		t.Errorf("long array shown as %q", s)
	}
	for v, want := range map[*Value]string{
		ptr(Int8Value(-3)):        "-3",
		ptr(Uint64Value(1 << 63)): "9223372036854775808",
		ptr(BoolValue(false)):     "false",
		ptr(StringValue("a\"b")):  `"a\"b"`,
		ptr(Float32Value(0.5)):    "0.5",
	} {
		if got := v.String(); got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
	if _, ok := StringValue("x").Uint(); ok {
		t.Error("Uint of a string")
	}
	if StringValue("x").Len() != 0 {
		t.Error("Len of a scalar")
	}
}

func ptr(v Value) *Value { return &v }
