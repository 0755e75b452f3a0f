package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// GGUF layout (little-endian), versions 2 and 3:
//
//	magic "GGUF" | version u32 | tensor_count u64 | kv_count u64
//	kv_count x   { key string | value_type u32 | value }
//	tensor_count x { name string | n_dims u32 | ne u64[n_dims] | type u32 | offset u64 }
//	padding to general.alignment (default 32) | tensor data
//
// A string is a u64 byte length followed by the bytes; an array is an element type u32,
// a u64 count and the elements (which may be arrays). Version 1 used u32 for counts and
// lengths and is refused. Tensor offsets are relative to the start of the data section
// and must be multiples of the alignment.

const (
	ggufMagic            = "GGUF"
	ggufDefaultAlignment = 32
	// ggufMaxDims bounds n_dims. GGML itself uses 4; a little headroom costs nothing and
	// still keeps a hostile n_dims from sizing an allocation.
	ggufMaxDims = 8
	// ggufMaxDepth bounds array nesting so that a file of nested array headers cannot
	// exhaust the goroutine stack through recursion.
	ggufMaxDepth = 32
	// maxAlignment keeps align-up arithmetic far from overflow while allowing any sane
	// page or cache-line size.
	maxAlignment = 1 << 30
)

// GGUFFile is a parsed GGUF file. Tensor data are views into the bytes given to ParseGGUF.
type GGUFFile struct {
	Path       string
	Version    uint32
	KV         []KV // in file order
	Alignment  int
	DataOffset int64
	Tensors    []*Tensor // in file order; Shape outermost first (GGUF ne reversed)

	index map[string]int
}

// Get returns the metadata value for key.
func (g *GGUFFile) Get(key string) (Value, bool) {
	i, ok := g.index[key]
	if !ok {
		return Value{}, false
	}
	return g.KV[i].Value, true
}

// String returns a string metadata value.
func (g *GGUFFile) String(key string) (string, bool) {
	v, ok := g.Get(key)
	if !ok {
		return "", false
	}
	return v.Str()
}

// Uint returns a non-negative integer metadata value of any integer type.
func (g *GGUFFile) Uint(key string) (uint64, bool) {
	v, ok := g.Get(key)
	if !ok {
		return 0, false
	}
	return v.Uint()
}

// Float returns a numeric metadata value as float64.
func (g *GGUFFile) Float(key string) (float64, bool) {
	v, ok := g.Get(key)
	if !ok {
		return 0, false
	}
	return v.Float()
}

// Architecture is general.architecture, or "" when absent.
func (g *GGUFFile) Architecture() string {
	s, _ := g.String("general.architecture")
	return s
}

// ggufReader is a bounds-checked cursor over the file. Every read checks the remaining
// length first, so truncated or hostile files end in an error, never a panic.
type ggufReader struct {
	name string
	b    []byte
	off  int
}

func (r *ggufReader) errf(format string, args ...any) error {
	return fmt.Errorf("loader: %s: "+format, append([]any{r.name}, args...)...)
}

func (r *ggufReader) remaining() int { return len(r.b) - r.off }

func (r *ggufReader) need(n uint64, what string) error {
	if n > uint64(r.remaining()) {
		return r.errf("%s at offset %d needs %d bytes but only %d remain (truncated file?)", what, r.off, n, r.remaining())
	}
	return nil
}

func (r *ggufReader) bytes(n uint64, what string) ([]byte, error) {
	if err := r.need(n, what); err != nil {
		return nil, err
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *ggufReader) u32(what string) (uint32, error) {
	b, err := r.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *ggufReader) u64(what string) (uint64, error) {
	b, err := r.bytes(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *ggufReader) str(what string) (string, error) {
	n, err := r.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(r.remaining()) {
		return "", r.errf("%s at offset %d: length %d exceeds the %d bytes left in the file", what, r.off-8, n, r.remaining())
	}
	b, _ := r.bytes(n, what)
	return string(b), nil
}

// skipStr skips a string and returns its length, or leaves the cursor unchanged and
// reports false when it does not fit.
func (r *ggufReader) skipStr() (int, bool) {
	if r.remaining() < 8 {
		return 0, false
	}
	n := binary.LittleEndian.Uint64(r.b[r.off:])
	if n > uint64(r.remaining()-8) {
		return 0, false
	}
	r.off += 8 + int(n)
	return int(n), true
}

// count reads a u64 element count and checks that count elements of at least minSize
// bytes each can fit in the rest of the file, so the count can safely size an allocation.
func (r *ggufReader) count(what string, minSize int) (int, error) {
	at := r.off
	n, err := r.u64(what)
	if err != nil {
		return 0, err
	}
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(r.remaining()/minSize) {
		return 0, r.errf("%s %d at offset %d is impossible: the %d bytes left in the file hold at most %d", what, n, at, r.remaining(), r.remaining()/minSize)
	}
	return int(n), nil
}

// ParseGGUF parses a GGUF v2 or v3 file held in data (typically a Mapping). name is used
// in error messages and as Path. The returned tensors are views into data.
func ParseGGUF(name string, data []byte) (*GGUFFile, error) {
	r := &ggufReader{name: name, b: data}
	version, err := r.header()
	if err != nil {
		return nil, err
	}
	g := &GGUFFile{Path: name, Version: version, Alignment: ggufDefaultAlignment, index: map[string]int{}}

	// A tensor info is at least name length (8) + n_dims (4) + type (4) + offset (8).
	nTensors, err := r.count("tensor count", 8+4+4+8)
	if err != nil {
		return nil, err
	}
	// A KV is at least key length (8) + value type (4) + a 1-byte value.
	nKV, err := r.count("metadata key/value count", 8+4+1)
	if err != nil {
		return nil, err
	}
	alignAt, err := r.metadata(g, nKV)
	if err != nil {
		return nil, err
	}
	if err := g.setAlignment(r, alignAt); err != nil {
		return nil, err
	}
	infos, err := r.tensorInfos(nTensors)
	if err != nil {
		return nil, err
	}

	dataOff, ok := alignUp(uint64(r.off), uint64(g.Alignment))
	if !ok {
		return nil, r.errf("data section offset overflows")
	}
	g.DataOffset = int64(dataOff)
	if g.Tensors, err = r.tensors(infos, dataOff, g.Alignment); err != nil {
		return nil, err
	}
	return g, nil
}

// header checks the magic and returns the version, refusing the versions and byte
// orders the reader does not handle with a message that says why.
func (r *ggufReader) header() (uint32, error) {
	data := r.b
	if len(data) < 4 || string(data[:4]) != ggufMagic {
		n := min(len(data), 4)
		return 0, r.errf("not a GGUF file (magic %q, want %q)", data[:n], ggufMagic)
	}
	r.off = 4
	version, err := r.u32("version")
	if err != nil {
		return 0, err
	}
	switch {
	case version == 1:
		return 0, r.errf("GGUF version 1 is not supported (it used 32-bit counts); only versions 2 and 3 are; convert the file with a current llama.cpp")
	case version == 2 || version == 3:
	case version != 0 && version&0xffff == 0 && bits.ReverseBytes32(version) <= 3:
		return 0, r.errf("big-endian GGUF (version %d byte-swapped) is not supported", bits.ReverseBytes32(version))
	default:
		return 0, r.errf("unsupported GGUF version %d (only 2 and 3 are supported)", version)
	}
	return version, nil
}

// metadata reads nKV key/value pairs into g.KV and g.index. It returns the offset of
// general.alignment (0 when absent), which that key's errors name.
func (r *ggufReader) metadata(g *GGUFFile, nKV int) (int, error) {
	g.KV = make([]KV, 0, nKV)
	alignAt := 0
	for i := 0; i < nKV; i++ {
		at := r.off
		key, err := r.str(fmt.Sprintf("metadata key #%d", i))
		if err != nil {
			return 0, err
		}
		qkey := Quote(key)
		if _, dup := g.index[key]; dup {
			return 0, r.errf("metadata key %s at offset %d appears twice", qkey, at)
		}
		t, err := r.u32(fmt.Sprintf("type of metadata %s", qkey))
		if err != nil {
			return 0, err
		}
		v, err := r.value(ValueType(t), qkey, 0)
		if err != nil {
			return 0, err
		}
		if key == "general.alignment" {
			alignAt = at
		}
		g.index[key] = len(g.KV)
		g.KV = append(g.KV, KV{Key: key, Value: v})
	}
	return alignAt, nil
}

// setAlignment takes g.Alignment from general.alignment when present (read at offset
// alignAt), checking that it is a power of two the offset arithmetic can use.
func (g *GGUFFile) setAlignment(r *ggufReader, alignAt int) error {
	v, ok := g.Get("general.alignment")
	if !ok {
		return nil
	}
	a, ok := v.Uint()
	if !ok {
		return r.errf("general.alignment at offset %d must be an unsigned integer, got %s %s", alignAt, v.Type(), quoteValue(v))
	}
	if a == 0 || a&(a-1) != 0 || a > maxAlignment {
		return r.errf("general.alignment %d at offset %d is not a power of two between 1 and %d", a, alignAt, maxAlignment)
	}
	g.Alignment = int(a)
	return nil
}

// ggufTensorInfo is one tensor info as read, checked only once the data section's
// offset is known (tensors).
type ggufTensorInfo struct {
	raw    string
	name   string // quoted (Quote), for errors
	at     int    // offset of the tensor info, for errors
	ne     []uint64
	typ    DType
	offset uint64
}

// tensorInfos reads n tensor infos, refusing repeated names and more dimensions than
// ggufMaxDims.
func (r *ggufReader) tensorInfos(n int) ([]ggufTensorInfo, error) {
	infos := make([]ggufTensorInfo, 0, n)
	seen := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		at := r.off
		tname, err := r.str(fmt.Sprintf("name of tensor #%d", i))
		if err != nil {
			return nil, err
		}
		qname := Quote(tname)
		if seen[tname] {
			return nil, r.errf("tensor %s at offset %d appears twice", qname, at)
		}
		seen[tname] = true
		nd, err := r.u32(fmt.Sprintf("tensor %s n_dims", qname))
		if err != nil {
			return nil, err
		}
		if nd > ggufMaxDims {
			return nil, r.errf("tensor %s at offset %d has %d dimensions (at most %d supported)", qname, at, nd, ggufMaxDims)
		}
		ne := make([]uint64, nd)
		for j := range ne {
			if ne[j], err = r.u64(fmt.Sprintf("tensor %s dimension %d", qname, j)); err != nil {
				return nil, err
			}
		}
		t, err := r.u32(fmt.Sprintf("tensor %s type", qname))
		if err != nil {
			return nil, err
		}
		off, err := r.u64(fmt.Sprintf("tensor %s offset", qname))
		if err != nil {
			return nil, err
		}
		infos = append(infos, ggufTensorInfo{tname, qname, at, ne, DType(t), off})
	}
	return infos, nil
}

// tensors checks each info's type, size, alignment and extent against the data section
// at dataOff, and returns the tensors as views into the file's bytes.
func (r *ggufReader) tensors(infos []ggufTensorInfo, dataOff uint64, alignment int) ([]*Tensor, error) {
	data := r.b
	fileSize := uint64(len(data))
	ts := make([]*Tensor, 0, len(infos))
	for _, in := range infos {
		if !in.typ.Known() {
			return nil, r.errf("tensor %s (info at offset %d) has unknown type id %d", in.name, in.at, uint32(in.typ))
		}
		shape, size, err := ggufTensorSize(in.typ, in.ne)
		if err != nil {
			return nil, r.errf("tensor %s (info at offset %d): %v", in.name, in.at, err)
		}
		if in.offset%uint64(alignment) != 0 {
			return nil, r.errf("tensor %s (info at offset %d): offset %d is not a multiple of the alignment %d", in.name, in.at, in.offset, alignment)
		}
		start, c1 := bits.Add64(dataOff, in.offset, 0)
		end, c2 := bits.Add64(start, size, 0)
		if c1 != 0 || c2 != 0 || end > fileSize {
			return nil, r.errf("tensor %s (info at offset %d): data [%d, %d) extends past end of file (%d bytes)", in.name, in.at, start, end, fileSize)
		}
		ts = append(ts, &Tensor{Name: in.raw, Shape: shape, DType: in.typ, Data: data[start:end:end]})
	}
	return ts, nil
}

// ggufTensorSize converts ne (innermost first) into a Shape (outermost first) and the
// byte size, refusing dimensions and products that overflow.
func ggufTensorSize(dt DType, ne []uint64) ([]int, uint64, error) {
	shape := make([]int, len(ne))
	elems := uint64(1)
	for j, d := range ne {
		if d > math.MaxInt64 {
			return nil, 0, fmt.Errorf("dimension %d is %d (negative or too large)", j, int64(d))
		}
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || lo > math.MaxInt64 {
			return nil, 0, fmt.Errorf("shape %v has too many elements", ne)
		}
		elems = lo
		shape[len(ne)-1-j] = int(d)
	}
	be, bb := uint64(dt.BlockElems()), uint64(dt.BlockBytes())
	var inner uint64 = 1
	if len(ne) > 0 {
		inner = ne[0]
	}
	if inner%be != 0 {
		return nil, 0, fmt.Errorf("row length %d of %s is not a multiple of its %d-element block", inner, dt, be)
	}
	hi, size := bits.Mul64(elems/be, bb)
	if hi != 0 || size > math.MaxInt64 {
		return nil, 0, fmt.Errorf("shape %v of %s is too large", ne, dt)
	}
	return shape, size, nil
}

func alignUp(x, a uint64) (uint64, bool) {
	y, c := bits.Add64(x, a-1, 0)
	if c != 0 {
		return 0, false
	}
	return y &^ (a - 1), true
}

// value reads one metadata value of type t; key (already quoted by Quote) and depth are
// for errors and nesting.
func (r *ggufReader) value(t ValueType, key string, depth int) (Value, error) {
	at := r.off
	if sz := t.size(); sz > 0 {
		b, err := r.bytes(uint64(sz), fmt.Sprintf("metadata %s value", key))
		if err != nil {
			return Value{}, err
		}
		return scalarFromBytes(t, b), nil
	}
	switch t {
	case TypeString:
		s, err := r.str(fmt.Sprintf("metadata %s string", key))
		if err != nil {
			return Value{}, err
		}
		return StringValue(s), nil
	case TypeArray:
		if depth >= ggufMaxDepth {
			return Value{}, r.errf("metadata %s at offset %d: arrays nested deeper than %d", key, at, ggufMaxDepth)
		}
		et, err := r.u32(fmt.Sprintf("metadata %s array element type", key))
		if err != nil {
			return Value{}, err
		}
		elem := ValueType(et)
		if !elem.valid() {
			return Value{}, r.errf("metadata %s at offset %d: unknown array element type %d", key, at, et)
		}
		minSize := elem.size()
		switch elem {
		case TypeString:
			minSize = 8
		case TypeArray:
			minSize = 4 + 8
		}
		n, err := r.count(fmt.Sprintf("metadata %s array length", key), minSize)
		if err != nil {
			return Value{}, err
		}
		v := Value{typ: TypeArray, elem: elem, n: n}
		switch elem {
		case TypeString:
			// Vocabularies hold up to hundreds of thousands of strings. A first pass
			// checks the lengths without building error context each time (only a
			// failure is re-read with one) and sums them, so that all the strings can
			// share one allocation.
			start, total := r.off, 0
			for i := 0; i < n; i++ {
				l, ok := r.skipStr()
				if !ok {
					_, err := r.str(fmt.Sprintf("metadata %s element %d", key, i))
					return Value{}, err
				}
				total += l
			}
			var sb strings.Builder
			sb.Grow(total)
			ends := make([]int, n)
			for i, off := 0, start; i < n; i++ {
				l := int(binary.LittleEndian.Uint64(r.b[off:]))
				sb.Write(r.b[off+8 : off+8+l])
				off += 8 + l
				ends[i] = sb.Len()
			}
			all := sb.String()
			v.strs = make([]string, n)
			prev := 0
			for i, e := range ends {
				v.strs[i] = all[prev:e]
				prev = e
			}
		case TypeArray:
			v.arrs = make([]Value, n)
			for i := range v.arrs {
				if v.arrs[i], err = r.value(TypeArray, key, depth+1); err != nil {
					return Value{}, err
				}
			}
		default:
			b, _ := r.bytes(uint64(n*minSize), "") // count() already checked the length
			v.raw = append([]byte(nil), b...)
			if elem == TypeBool {
				for i, c := range v.raw {
					if c > 1 {
						v.raw[i] = 1
					}
				}
			}
		}
		return v, nil
	}
	return Value{}, r.errf("metadata %s at offset %d has unknown value type %d", key, at-4, uint32(t))
}
