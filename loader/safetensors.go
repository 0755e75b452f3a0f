package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
)

// safetensors layout: u64 little-endian header length N | N bytes of JSON | data.
// The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} with
// offsets relative to the start of the data, plus an optional "__metadata__" object of
// string values.

// maxSafetensorsHeader bounds the JSON header. Real headers are a few hundred bytes per
// tensor; 100 MB is far above any real model and keeps a hostile length from driving a
// huge parse.
const maxSafetensorsHeader = 100 << 20

var safetensorsDTypes = map[string]DType{
	"F32": F32, "F16": F16, "BF16": BF16, "F64": F64,
	"I8": I8, "I16": I16, "I32": I32, "I64": I64,
}

func safetensorsDTypeName(d DType) (string, bool) {
	for k, v := range safetensorsDTypes {
		if v == d {
			return k, true
		}
	}
	return "", false
}

type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// ParseSafetensors parses one safetensors file held in data (typically a Mapping). name
// is used in errors. Tensors are returned in data order (by begin offset) as views into
// data; metadata is the __metadata__ object, nil when absent.
func ParseSafetensors(name string, data []byte) ([]*Tensor, map[string]string, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("loader: %s: "+format, append([]any{name}, args...)...)
	}
	if len(data) < 8 {
		return nil, nil, errf("file is %d bytes, too short for the 8-byte safetensors header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxSafetensorsHeader {
		return nil, nil, errf("safetensors header length %d exceeds the %d-byte limit (not a safetensors file?)", n, maxSafetensorsHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, nil, errf("safetensors header length %d extends past end of file (%d bytes)", n, len(data))
	}
	header := data[8 : 8+n]
	body := data[8+n:]

	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errf("safetensors header is not a JSON object")
	}
	var meta map[string]string
	var tensors []*Tensor
	type span struct{ begin, end uint64 }
	spans := map[*Tensor]span{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, errf("bad JSON in safetensors header: %v", err)
		}
		key, _ := tok.(string) // object keys are always strings
		qkey := Quote(key)
		at := 8 + dec.InputOffset() // the file offset just past the key, for errors
		if seen[key] {
			return nil, nil, errf("safetensors header lists %s twice (again at offset %d)", qkey, at)
		}
		seen[key] = true
		if key == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, errf("__metadata__ must be an object of strings: %v", err)
			}
			continue
		}
		var e stEntry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, errf("tensor %s at offset %d: bad header entry: %v", qkey, at, err)
		}
		dt, ok := safetensorsDTypes[e.DType]
		if !ok {
			if e.DType == "" {
				return nil, nil, errf("tensor %s at offset %d: missing dtype", qkey, at)
			}
			return nil, nil, errf("tensor %s at offset %d: unsupported dtype %s (supported: F32, F16, BF16, F64, I8, I16, I32, I64)", qkey, at, Quote(e.DType))
		}
		if e.Shape == nil {
			return nil, nil, errf("tensor %s at offset %d: missing shape", qkey, at)
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, errf("tensor %s at offset %d: data_offsets must be [begin, end], got %v", qkey, at, e.DataOffsets)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin > end {
			return nil, nil, errf("tensor %s at offset %d: data_offsets [%d, %d) end before they begin", qkey, at, begin, end)
		}
		if end > uint64(len(body)) {
			return nil, nil, errf("tensor %s at offset %d: data [%d, %d) extends past end of file (%d data bytes after the header)", qkey, at, begin, end, len(body))
		}
		shape := make([]int, len(e.Shape))
		elems := uint64(1)
		for i, d := range e.Shape {
			if d < 0 {
				return nil, nil, errf("tensor %s at offset %d: negative dimension in shape %v", qkey, at, e.Shape)
			}
			hi, lo := bits.Mul64(elems, uint64(d))
			if hi != 0 || lo > math.MaxInt64 {
				return nil, nil, errf("tensor %s at offset %d: shape %v has too many elements", qkey, at, e.Shape)
			}
			elems = lo
			shape[i] = int(d)
		}
		hi, size := bits.Mul64(elems, uint64(dt.BlockBytes()))
		if hi != 0 || size != end-begin {
			return nil, nil, errf("tensor %s at offset %d: shape %v of %s needs %d bytes but data_offsets [%d, %d) hold %d", qkey, at, e.Shape, Quote(e.DType), size, begin, end, end-begin)
		}
		t := &Tensor{Name: key, Shape: shape, DType: dt, Data: body[begin:end:end]}
		tensors = append(tensors, t)
		spans[t] = span{begin, end}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, errf("bad JSON in safetensors header: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errf("bad JSON in safetensors header: data after the header object")
	}
	sort.SliceStable(tensors, func(i, j int) bool {
		a, b := spans[tensors[i]], spans[tensors[j]]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		return a.end < b.end
	})
	// Overlapping tensors would alias each other's bytes; no writer produces them, so they
	// mark a corrupt or crafted file.
	for i := 1; i < len(tensors); i++ {
		prev, cur := spans[tensors[i-1]], spans[tensors[i]]
		if cur.begin < prev.end {
			return nil, nil, errf("tensors %s [%d, %d) and %s [%d, %d) overlap", Quote(tensors[i-1].Name), prev.begin, prev.end, Quote(tensors[i].Name), cur.begin, cur.end)
		}
	}
	return tensors, meta, nil
}
