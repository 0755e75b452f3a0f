package loader

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// checkGGUF asserts the invariants a successful parse must give: every tensor view lies
// inside the input, has exactly the size its dtype and shape imply, and starts aligned.
func checkGGUF(t *testing.T, data []byte, g *GGUFFile) {
	if g.Alignment <= 0 || g.Alignment&(g.Alignment-1) != 0 {
		t.Fatalf("alignment %d", g.Alignment)
	}
	for _, tn := range g.Tensors {
		want, err := tn.DType.RowBytes(tn.Elems())
		if err != nil || want != len(tn.Data) {
			t.Fatalf("%v: %d bytes, want %d (%v)", tn, len(tn.Data), want, err)
		}
		if len(tn.Data) > 0 {
			if !within(data, tn.Data) {
				t.Fatalf("%v: data outside the input", tn)
			}
		}
	}
	for _, kv := range g.KV {
		_ = kv.Value.String() // must not panic on any parsed value
		_, _ = kv.Value.Array()
		_, _ = kv.Value.Float32s()
		_, _ = kv.Value.Int32s()
	}
}

func FuzzParseGGUF(f *testing.F) {
	valid := buildGGUF(f)
	f.Add(valid)
	small := NewGGUFWriter()
	small.Set("general.architecture", StringValue("llama"))
	small.Set("a", ArrayValue(TypeArray, []Value{StringsValue([]string{"x"})}))
	small.AddTensor("w", Q4_0, []int{1, 32}, make([]byte, 18))
	sb, _ := small.Bytes()
	f.Add(sb)
	f.Add([]byte("GGUF"))
	f.Add(header(0, 0).b)
	f.Add(header(1, 0).tensorInfo("w", 0, 0, 4).data(16).b)
	f.Add(header(1, 1).str("general.alignment").u32(uint32(TypeU32)).u32(64).tensorInfo("w", 8, 0, 32).data(34).b)
	// Corruptions of the valid file: flipped counts, lengths and a cut.
	for _, off := range []int{5, 8, 16, 24, 40, len(valid) / 2} {
		c := bytes.Clone(valid)
		c[off] ^= 0xff
		f.Add(c)
	}
	f.Add(valid[:len(valid)/3])
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGGUF("fuzz.gguf", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "loader: fuzz.gguf: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		checkGGUF(t, data, g)
	})
}

func FuzzParseSafetensors(f *testing.F) {
	valid, err := SafetensorsBytes([]*Tensor{
		{Name: "a", DType: F32, Shape: []int{2}, Data: F32Bytes([]float32{1, 2})},
		{Name: "b", DType: BF16, Shape: []int{1, 3}, Data: F32ToBF16Bytes([]float32{1, 2, 3})},
		{Name: "s", DType: I64, Shape: []int{}, Data: make([]byte, 8)},
	}, map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(st(`{}`, 0))
	f.Add(st(`{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}`, 8))
	f.Add(st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12))
	f.Add(st(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4))
	for _, off := range []int{0, 3, 7, 12, len(valid) - 3} {
		c := bytes.Clone(valid)
		c[off] ^= 0x5a
		f.Add(c)
	}
	f.Add(valid[:len(valid)-1])
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := ParseSafetensors("fuzz.safetensors", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "loader: fuzz.safetensors: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		hl := binary.LittleEndian.Uint64(data)
		body := data[8+hl:]
		for _, tn := range ts {
			if len(tn.Data) != tn.Elems()*tn.DType.BlockBytes() {
				t.Fatalf("%v: wrong size", tn)
			}
			if len(tn.Data) > 0 && !within(body, tn.Data) {
				t.Fatalf("%v: data outside the data section", tn)
			}
		}
	})
}
