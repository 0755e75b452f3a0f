package loader

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// GGUFWriter builds a GGUF v3 file: metadata in Set order, then tensors in AddTensor
// order, each padded to the alignment (32 unless general.alignment is Set).
type GGUFWriter struct {
	kv      []KV
	kvIndex map[string]int
	tensors []*Tensor
	names   map[string]bool
	// sizes[i] is tensor i's byte size; fills[i], when non-nil, produces its bytes at
	// write time (AddTensorFunc) instead of tensors[i].Data.
	sizes []uint64
	fills []func(w io.Writer) error
}

// NewGGUFWriter returns an empty writer.
func NewGGUFWriter() *GGUFWriter {
	return &GGUFWriter{kvIndex: map[string]int{}, names: map[string]bool{}}
}

// Set sets a metadata value; setting a key again replaces the value in place.
func (w *GGUFWriter) Set(key string, v Value) {
	if i, ok := w.kvIndex[key]; ok {
		w.kv[i].Value = v
		return
	}
	w.kvIndex[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: v})
}

// AddTensor adds a tensor; shape is outermost first (it is reversed into GGUF's ne).
// data is not copied and must stay unchanged until WriteFile returns.
func (w *GGUFWriter) AddTensor(name string, dt DType, shape []int, data []byte) error {
	size, err := w.check(name, dt, shape)
	if err != nil {
		return err
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("loader: GGUF writer: tensor %q: shape %v of %s needs %d bytes, got %d", name, shape, dt, size, len(data))
	}
	w.add(name, dt, shape, data, size, nil)
	return nil
}

// AddTensorFunc adds a tensor whose bytes fill writes when the file is encoded, so that
// a file larger than memory (a generated multi-GB model) is written without holding its
// tensors. fill must write exactly the tensor's byte size; encoding checks it.
func (w *GGUFWriter) AddTensorFunc(name string, dt DType, shape []int, fill func(w io.Writer) error) error {
	if fill == nil {
		return fmt.Errorf("loader: GGUF writer: tensor %q: nil fill function", name)
	}
	size, err := w.check(name, dt, shape)
	if err != nil {
		return err
	}
	w.add(name, dt, shape, nil, size, fill)
	return nil
}

// check validates a new tensor and returns its byte size.
func (w *GGUFWriter) check(name string, dt DType, shape []int) (uint64, error) {
	if w.names[name] {
		return 0, fmt.Errorf("loader: GGUF writer: tensor %q added twice", name)
	}
	if !dt.Known() {
		return 0, fmt.Errorf("loader: GGUF writer: tensor %q: unknown type id %d", name, uint32(dt))
	}
	if len(shape) < 1 || len(shape) > 4 {
		return 0, fmt.Errorf("loader: GGUF writer: tensor %q: %d dimensions (GGUF readers accept 1 to 4)", name, len(shape))
	}
	ne := make([]uint64, len(shape))
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("loader: GGUF writer: tensor %q: negative dimension in shape %v", name, shape)
		}
		ne[len(shape)-1-i] = uint64(d)
	}
	_, size, err := ggufTensorSize(dt, ne)
	if err != nil {
		return 0, fmt.Errorf("loader: GGUF writer: tensor %q: %v", name, err)
	}
	return size, nil
}

func (w *GGUFWriter) add(name string, dt DType, shape []int, data []byte, size uint64, fill func(io.Writer) error) {
	w.names[name] = true
	w.tensors = append(w.tensors, &Tensor{Name: name, Shape: append([]int(nil), shape...), DType: dt, Data: data})
	w.sizes = append(w.sizes, size)
	w.fills = append(w.fills, fill)
}

// Size returns the number of bytes the encoded file will have, so that a caller can
// show progress while it is written.
func (w *GGUFWriter) Size() (int64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	h, off, err := w.header(align)
	if err != nil {
		return 0, err
	}
	return int64(len(h)) + int64(off), nil
}

// alignment is general.alignment when set, else the GGUF default.
func (w *GGUFWriter) alignment() (int, error) {
	i, ok := w.kvIndex["general.alignment"]
	if !ok {
		return ggufDefaultAlignment, nil
	}
	a, ok := w.kv[i].Value.Uint()
	if !ok || a == 0 || a&(a-1) != 0 || a > maxAlignment {
		return 0, fmt.Errorf("loader: GGUF writer: general.alignment %s is not a power of two", w.kv[i].Value)
	}
	return int(a), nil
}

// WriteFile writes the file atomically (see WriteFileAtomic).
func (w *GGUFWriter) WriteFile(path string) error {
	return w.WriteFileContext(context.Background(), path)
}

// WriteFileContext is WriteFile stopped by ctx (see WriteFileAtomicContext).
func (w *GGUFWriter) WriteFileContext(ctx context.Context, path string) error {
	if _, err := w.alignment(); err != nil {
		return err
	}
	return WriteFileAtomicContext(ctx, path, w.encode)
}

// Encode writes the file to out (use WriteFile for an atomic file on disk; Encode lets a
// caller wrap the stream, for example to count bytes for a progress bar, inside its own
// WriteFileAtomic).
func (w *GGUFWriter) Encode(out io.Writer) error { return w.encode(out) }

// Bytes returns the encoded file (for tests and in-memory use).
func (w *GGUFWriter) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := w.encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (w *GGUFWriter) encode(out io.Writer) error {
	align, err := w.alignment()
	if err != nil {
		return err
	}
	h, _, err := w.header(align)
	if err != nil {
		return err
	}
	if _, err := out.Write(h); err != nil {
		return err
	}
	zeros := make([]byte, align)
	for i, t := range w.tensors {
		if f := w.fills[i]; f != nil {
			cw := &countWriter{w: out}
			if err := f(cw); err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
			if uint64(cw.n) != w.sizes[i] {
				return fmt.Errorf("tensor %q: fill wrote %d bytes, want %d", t.Name, cw.n, w.sizes[i])
			}
		} else if _, err := out.Write(t.Data); err != nil {
			return err
		}
		if _, err := out.Write(zeros[:padding(int(w.sizes[i]%uint64(align)), align)]); err != nil {
			return err
		}
	}
	return nil
}

// header encodes everything before the tensor data, padded to the alignment, and
// returns it with the size of the data section.
func (w *GGUFWriter) header(align int) ([]byte, uint64, error) {
	le := binary.LittleEndian
	h := []byte(ggufMagic)
	h = le.AppendUint32(h, 3)
	h = le.AppendUint64(h, uint64(len(w.tensors)))
	h = le.AppendUint64(h, uint64(len(w.kv)))
	var err error
	for _, kv := range w.kv {
		h = appendGGUFString(h, kv.Key)
		h = le.AppendUint32(h, uint32(kv.Value.typ))
		if h, err = appendGGUFValue(h, kv.Value); err != nil {
			return nil, 0, fmt.Errorf("loader: GGUF writer: metadata %q: %v", kv.Key, err)
		}
	}
	var off uint64
	for i, t := range w.tensors {
		h = appendGGUFString(h, t.Name)
		h = le.AppendUint32(h, uint32(len(t.Shape)))
		for j := len(t.Shape) - 1; j >= 0; j-- {
			h = le.AppendUint64(h, uint64(t.Shape[j]))
		}
		h = le.AppendUint32(h, uint32(t.DType))
		h = le.AppendUint64(h, off)
		off, _ = alignUp(off+w.sizes[i], uint64(align))
	}
	h = append(h, make([]byte, padding(len(h), align))...)
	return h, off, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func padding(n, align int) int { return (align - n%align) % align }

func appendGGUFString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendGGUFValue appends v's payload (without its type tag, which arrays of arrays do
// not repeat per element).
func appendGGUFValue(b []byte, v Value) ([]byte, error) {
	switch {
	case v.typ.size() > 0:
		return appendScalar(b, v), nil
	case v.typ == TypeString:
		return appendGGUFString(b, v.str), nil
	case v.typ != TypeArray:
		return nil, fmt.Errorf("invalid value type %d", uint32(v.typ))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(v.elem))
	b = binary.LittleEndian.AppendUint64(b, uint64(v.n))
	switch {
	case v.elem == TypeString:
		for _, s := range v.strs {
			b = appendGGUFString(b, s)
		}
	case v.elem == TypeArray:
		for _, e := range v.arrs {
			var err error
			if b, err = appendGGUFValue(b, e); err != nil {
				return nil, err
			}
		}
	case v.elem.size() > 0:
		b = append(b, v.raw...)
	default:
		return nil, fmt.Errorf("invalid array element type %d", uint32(v.elem))
	}
	return b, nil
}

// WriteSafetensors writes tensors (in the given order, contiguously) and metadata to a
// safetensors file, atomically. Only the dtypes safetensors names are accepted (F32, F16,
// BF16, F64, I8, I16, I32, I64).
func WriteSafetensors(path string, tensors []*Tensor, metadata map[string]string) error {
	header, err := safetensorsHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("loader: %s: %v", path, err)
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		return writeSafetensors(w, header, tensors)
	})
}

// SafetensorsBytes returns the encoded safetensors file (for tests and in-memory use).
func SafetensorsBytes(tensors []*Tensor, metadata map[string]string) ([]byte, error) {
	header, err := safetensorsHeader(tensors, metadata)
	if err != nil {
		return nil, fmt.Errorf("loader: safetensors writer: %v", err)
	}
	var b bytes.Buffer
	err = writeSafetensors(&b, header, tensors)
	return b.Bytes(), err
}

func writeSafetensors(w io.Writer, header []byte, tensors []*Tensor) error {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// safetensorsHeader builds the JSON header by hand so that its key order is the tensor
// order (encoding/json would sort map keys), padded with spaces so the data starts
// 8-byte aligned, as the reference implementation does.
func safetensorsHeader(tensors []*Tensor, metadata map[string]string) ([]byte, error) {
	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			h.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sep()
		h.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	seen := map[string]bool{}
	var off uint64
	for _, t := range tensors {
		if t.Name == "__metadata__" {
			return nil, fmt.Errorf("a tensor cannot be named __metadata__")
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		name, ok := safetensorsDTypeName(t.DType)
		if !ok {
			return nil, fmt.Errorf("tensor %q: safetensors cannot hold %s", t.Name, t.DType)
		}
		want := uint64(t.DType.BlockBytes())
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			want *= uint64(d)
		}
		if want != uint64(len(t.Data)) {
			return nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, got %d", t.Name, t.Shape, t.DType, want, len(t.Data))
		}
		sep()
		writeJSONString(&h, t.Name)
		h.WriteString(`:{"dtype":"` + name + `","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		end := off + uint64(len(t.Data))
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	h.WriteByte('}')
	for (8+h.Len())%8 != 0 {
		h.WriteByte(' ')
	}
	return h.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // marshalling a string cannot fail
	b.Write(q)
}
