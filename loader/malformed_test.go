package loader

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gb builds raw GGUF bytes field by field, to craft files no writer would produce.
type gb struct{ b []byte }

func (g *gb) u32(v uint32) *gb { g.b = binary.LittleEndian.AppendUint32(g.b, v); return g }
func (g *gb) u64(v uint64) *gb { g.b = binary.LittleEndian.AppendUint64(g.b, v); return g }
func (g *gb) str(s string) *gb { g.u64(uint64(len(s))); g.b = append(g.b, s...); return g }
func (g *gb) raw(b ...byte) *gb {
	g.b = append(g.b, b...)
	return g
}

// header starts a v3 file with the given counts.
func header(nTensors, nKV uint64) *gb {
	g := &gb{b: []byte("GGUF")}
	return g.u32(3).u64(nTensors).u64(nKV)
}

// tensorInfo appends one tensor info (ne innermost first, as in the file).
func (g *gb) tensorInfo(name string, typ uint32, off uint64, ne ...uint64) *gb {
	g.str(name).u32(uint32(len(ne)))
	for _, d := range ne {
		g.u64(d)
	}
	return g.u32(typ).u64(off)
}

// pad pads to 32 and appends n data bytes.
func (g *gb) data(n int) *gb {
	for len(g.b)%32 != 0 {
		g.b = append(g.b, 0)
	}
	g.b = append(g.b, make([]byte, n)...)
	return g
}

func wantErr(t *testing.T, err error, file string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	msg := err.Error()
	if !strings.Contains(msg, file) {
		t.Errorf("error %q does not name the file %q", msg, file)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

func TestGGUFMalformed(t *testing.T) {
	nested := header(0, 1).str("deep").u32(uint32(TypeArray))
	for i := 0; i < 40; i++ {
		nested.u32(uint32(TypeArray)).u64(1)
	}
	nested.u32(uint32(TypeU8)).u64(0)

	cases := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"empty", nil, []string{"not a GGUF file"}},
		{"bad magic", []byte("GGUX\x03\x00\x00\x00"), []string{"not a GGUF file", "GGUX"}},
		{"no version", []byte("GGUF\x03"), []string{"version", "truncated"}},
		{"version 1", (&gb{b: []byte("GGUF")}).u32(1).u32(0).u32(0).b, []string{"version 1", "not supported"}},
		{"version 4", (&gb{b: []byte("GGUF")}).u32(4).u64(0).u64(0).b, []string{"unsupported GGUF version 4"}},
		{"big endian", (&gb{b: []byte("GGUF")}).raw(0, 0, 0, 3).u64(0).u64(0).b, []string{"big-endian"}},
		{"huge tensor count", header(1<<60, 0).b, []string{"tensor count", "impossible"}},
		{"huge kv count", header(0, 1<<62).b, []string{"metadata key/value count", "impossible"}},
		{"huge key length", header(0, 1).u64(1 << 62).raw(make([]byte, 32)...).b, []string{"metadata key #0", "exceeds"}},
		{"huge string value", header(0, 1).str("k").u32(uint32(TypeString)).u64(1 << 40).b, []string{`"k"`, "exceeds"}},
		{"huge array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeU32)).u64(1 << 61).b, []string{`"k"`, "array length", "impossible"}},
		{"huge string array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 30).raw(make([]byte, 64)...).b, []string{"array length"}},
		{"unknown value type", header(0, 1).str("k").u32(13).u32(0).b, []string{`"k"`, "unknown value type 13"}},
		{"unknown element type", header(0, 1).str("k").u32(uint32(TypeArray)).u32(77).u64(0).b, []string{"unknown array element type 77"}},
		{"deep nesting", nested.b, []string{`"deep"`, "nested deeper"}},
		{"duplicate key", header(0, 2).str("k").u32(uint32(TypeU8)).raw(1).str("k").u32(uint32(TypeU8)).raw(2).b, []string{`"k"`, "twice"}},
		{"alignment zero", header(0, 1).str("general.alignment").u32(uint32(TypeU32)).u32(0).b, []string{"general.alignment 0"}},
		{"alignment three", header(0, 1).str("general.alignment").u32(uint32(TypeU32)).u32(3).b, []string{"general.alignment 3", "power of two"}},
		{"alignment string", header(0, 1).str("general.alignment").u32(uint32(TypeString)).str("32").b, []string{"general.alignment at offset 24 must be an unsigned integer"}},
		{"alignment negative", header(0, 1).str("general.alignment").u32(uint32(TypeI32)).u32(0xffffffe0).b, []string{"general.alignment"}},
		{"too many dims", header(1, 0).tensorInfo("w", 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1).data(4).b, []string{`tensor "w"`, "9 dimensions"}},
		{"huge n_dims", header(1, 0).str("w").u32(1 << 31).raw(make([]byte, 32)...).b, []string{`tensor "w"`, "dimensions"}},
		{"unknown tensor type", header(1, 0).tensorInfo("w", 99, 0, 4).data(64).b, []string{`tensor "w"`, "unknown type id 99"}},
		{"misaligned offset", header(1, 0).tensorInfo("w", 0, 4, 1).data(64).b, []string{`tensor "w"`, "offset 4", "alignment 32"}},
		{"offset past end", header(1, 0).tensorInfo("blk.0.attn_q.weight", 0, 1<<20, 4).data(16).b, []string{`tensor "blk.0.attn_q.weight"`, "extends past end of file"}},
		{"data past end", header(1, 0).tensorInfo("w", 0, 0, 8).data(31).b, []string{`tensor "w"`, "data [", "extends past end of file"}},
		{"offset overflow", header(1, 0).tensorInfo("w", 0, 1<<64-32, 4).data(16).b, []string{`tensor "w"`, "extends past end of file"}},
		{"element overflow", header(1, 0).tensorInfo("w", 0, 0, 1<<40, 1<<40).data(16).b, []string{`tensor "w"`, "too many elements"}},
		{"negative dim", header(1, 0).tensorInfo("w", 0, 0, 1<<64-1).data(16).b, []string{`tensor "w"`, "negative or too large"}},
		{"size overflow", header(1, 0).tensorInfo("w", 0, 0, 1<<62).data(16).b, []string{`tensor "w"`, "too large"}},
		{"partial block", header(1, 0).tensorInfo("w", uint32(Q8_0), 0, 31).data(64).b, []string{`tensor "w"`, "not a multiple of its 32-element block"}},
		{"duplicate tensor", header(2, 0).tensorInfo("w", 0, 0, 1).tensorInfo("w", 0, 32, 1).data(64).b, []string{`tensor "w" at offset 57 appears twice`}},
		{"truncated tensor info", header(1, 0).str("w").u32(2).u64(4).b, []string{`tensor "w" dimension 1`, "truncated"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseGGUF("bad.gguf", c.data)
			wantErr(t, err, "bad.gguf", c.parts...)
		})
	}
}

func TestGGUFTruncatedPrefixes(t *testing.T) {
	b := buildGGUF(t)
	if _, err := ParseGGUF("ok.gguf", b); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		g, err := ParseGGUF("trunc.gguf", b[:n:n])
		if err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed without error: %d tensors", n, len(b), len(g.Tensors))
		}
		if !strings.HasPrefix(err.Error(), "loader: trunc.gguf: ") {
			t.Fatalf("prefix %d: error %q does not name the file", n, err)
		}
	}
}

// st builds a safetensors file from a raw header string and n data bytes.
func st(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func TestSafetensorsMalformed(t *testing.T) {
	cases := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"empty", nil, []string{"too short"}},
		{"seven bytes", make([]byte, 7), []string{"too short"}},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<40), []string{"header length", "limit"}},
		{"header past EOF", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), []string{"header length 100", "extends past end of file"}},
		{"not an object", st(`[1,2]`, 0), []string{"not a JSON object"}},
		{"bad JSON", st(`{"a":{"dtype":"F32",`, 0), []string{"tensor \"a\"", "bad header entry"}},
		{"bad JSON key", st(`{"a" 1}`, 0), []string{`"a"`, "bad header entry"}},
		{"trailing data", st(`{} {}`, 0), []string{"bad JSON", "after the header"}},
		{"unclosed", st(`{"__metadata__":{}`, 0), []string{"bad JSON"}},
		{"unknown dtype", st(`{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}`, 2), []string{`tensor "w"`, `unsupported dtype "F8_E4M3"`}},
		{"missing dtype", st(`{"w":{"shape":[2],"data_offsets":[0,8]}}`, 8), []string{`tensor "w"`, "missing dtype"}},
		{"missing shape", st(`{"w":{"dtype":"F32","data_offsets":[0,8]}}`, 8), []string{`tensor "w"`, "missing shape"}},
		{"bad offsets", st(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, 8), []string{`tensor "w"`, "data_offsets must be"}},
		{"begin after end", st(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, 8), []string{`tensor "w"`, "end before"}},
		{"past end", st(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8), []string{`tensor "w"`, "data [0, 16) extends past end of file"}},
		{"huge offset", st(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}}`, 8), []string{`tensor "w"`, "extends past end of file"}},
		{"offset overflow", st(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}`, 8), []string{`tensor "w"`, "bad header entry"}},
		{"short data", st(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), []string{`tensor "w"`, "needs 12 bytes", "hold 8"}},
		{"negative dim", st(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8), []string{`tensor "w"`, "negative dimension"}},
		{"elements overflow", st(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, 8), []string{`tensor "w"`, "too many elements"}},
		{"bytes overflow", st(`{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`, 8), []string{`tensor "w"`, "needs"}},
		{"overlap", st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), []string{`"a"`, `"b"`, "overlap"}},
		{"duplicate name", st(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), []string{`"a"`, "twice"}},
		{"metadata not strings", st(`{"__metadata__":{"n":1}}`, 0), []string{"__metadata__"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseSafetensors("bad.safetensors", c.data)
			wantErr(t, err, "bad.safetensors", c.parts...)
		})
	}
}

func TestSafetensorsTruncatedPrefixes(t *testing.T) {
	b, err := SafetensorsBytes([]*Tensor{
		{Name: "a", DType: F32, Shape: []int{2}, Data: F32Bytes([]float32{1, 2})},
		{Name: "b", DType: F16, Shape: []int{1, 3}, Data: F32ToF16Bytes([]float32{1, 2, 3})},
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ParseSafetensors("ok.safetensors", b); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		_, _, err := ParseSafetensors("trunc.safetensors", b[:n:n])
		if err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed without error", n, len(b))
		}
		if !strings.HasPrefix(err.Error(), "loader: trunc.safetensors: ") {
			t.Fatalf("prefix %d: error %q does not name the file", n, err)
		}
	}
}

func TestFolderMalformed(t *testing.T) {
	one := func(name string) []*Tensor {
		return []*Tensor{{Name: name, DType: F32, Shape: []int{1}, Data: F32Bytes([]float32{1})}}
	}
	t.Run("duplicate across shards", func(t *testing.T) {
		dir := t.TempDir()
		WriteSafetensors(filepath.Join(dir, "s1.safetensors"), one("x"), nil)
		WriteSafetensors(filepath.Join(dir, "s2.safetensors"), one("x"), nil)
		_, err := Open(dir)
		wantErr(t, err, dir, `tensor "x"`, "s1.safetensors", "s2.safetensors")
		writeIndex(t, dir, map[string]string{"x": "s1.safetensors", "y": "s2.safetensors"})
		_, err = Open(dir)
		wantErr(t, err, dir, `tensor "x"`, "both")
	})
	t.Run("index escapes folder", func(t *testing.T) {
		dir := t.TempDir()
		writeIndex(t, dir, map[string]string{"x": "../evil.safetensors"})
		_, err := Open(dir)
		wantErr(t, err, dir, hfIndexFile, "../evil.safetensors", "not a file name")
	})
	t.Run("index names missing tensor", func(t *testing.T) {
		dir := t.TempDir()
		WriteSafetensors(filepath.Join(dir, "s1.safetensors"), one("x"), nil)
		writeIndex(t, dir, map[string]string{"x": "s1.safetensors", "ghost": "s1.safetensors"})
		_, err := Open(dir)
		wantErr(t, err, dir, `"ghost"`, "does not contain")
	})
	t.Run("index maps to wrong shard", func(t *testing.T) {
		dir := t.TempDir()
		WriteSafetensors(filepath.Join(dir, "s1.safetensors"), one("x"), nil)
		WriteSafetensors(filepath.Join(dir, "s2.safetensors"), one("y"), nil)
		writeIndex(t, dir, map[string]string{"x": "s2.safetensors", "y": "s2.safetensors"})
		_, err := Open(dir)
		wantErr(t, err, dir, `"x"`, "s2.safetensors")
	})
	t.Run("index missing shard", func(t *testing.T) {
		dir := t.TempDir()
		writeIndex(t, dir, map[string]string{"x": "gone.safetensors"})
		_, err := Open(dir)
		wantErr(t, err, "gone.safetensors", "no such file")
	})
	t.Run("bad index JSON", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, hfIndexFile), []byte(`{"weight_map":`), 0o644)
		_, err := Open(dir)
		wantErr(t, err, dir, hfIndexFile, "bad JSON")
	})
	t.Run("empty index", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, hfIndexFile), []byte(`{}`), 0o644)
		_, err := Open(dir)
		wantErr(t, err, dir, "no weight_map")
	})
	t.Run("empty folder", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Open(dir)
		wantErr(t, err, dir, "no model found")
	})
	t.Run("empty files", func(t *testing.T) {
		dir := t.TempDir()
		for _, n := range []string{"e.gguf", "model.safetensors", "e.bin"} {
			os.WriteFile(filepath.Join(dir, n), nil, 0o644)
		}
		mp, err := Map(filepath.Join(dir, "e.gguf"))
		if err != nil || len(mp.Data) != 0 {
			t.Fatal(err)
		}
		if err := mp.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = Open(filepath.Join(dir, "e.gguf"))
		wantErr(t, err, "e.gguf", "not a GGUF file")
		_, err = Open(filepath.Join(dir, "model.safetensors"))
		wantErr(t, err, "model.safetensors", "too short")
		_, err = Open(filepath.Join(dir, "e.bin"))
		wantErr(t, err, "e.bin", "not a model file")
		_, err = Open(dir)
		wantErr(t, err, "model.safetensors", "too short")
	})
	t.Run("missing path", func(t *testing.T) {
		_, err := Open(filepath.Join(t.TempDir(), "nope.gguf"))
		wantErr(t, err, "nope.gguf", "no such file")
		_, err = Map(t.TempDir())
		wantErr(t, err, "", "directory")
	})
	t.Run("gguf by magic", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "model.bin")
		os.WriteFile(p, buildGGUF(t), 0o644)
		m, err := Open(p)
		if err != nil || m.Format != "gguf" {
			t.Fatal(err)
		}
		m.Close()
	})
	t.Run("memory folder errors", func(t *testing.T) {
		_, err := OpenHFFiles("embedded", map[string][]byte{"model.safetensors": []byte("short")})
		wantErr(t, err, "embedded/model.safetensors", "too short")
		_, err = OpenHFFiles("embedded", map[string][]byte{"config.json": []byte("{}")})
		wantErr(t, err, "embedded", "no model found")
	})
}
