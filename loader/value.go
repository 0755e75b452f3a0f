package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ValueType is the type of a GGUF metadata value; the numeric values are the file's.
type ValueType uint32

const (
	TypeU8     ValueType = 0
	TypeI8     ValueType = 1
	TypeU16    ValueType = 2
	TypeI16    ValueType = 3
	TypeU32    ValueType = 4
	TypeI32    ValueType = 5
	TypeF32    ValueType = 6
	TypeBool   ValueType = 7
	TypeString ValueType = 8
	TypeArray  ValueType = 9
	TypeU64    ValueType = 10
	TypeI64    ValueType = 11
	TypeF64    ValueType = 12
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type%d", uint32(t))
}

// size is the encoded size of a fixed-size scalar type, 0 for strings, arrays and
// unknown types.
func (t ValueType) size() int {
	switch t {
	case TypeU8, TypeI8, TypeBool:
		return 1
	case TypeU16, TypeI16:
		return 2
	case TypeU32, TypeI32, TypeF32:
		return 4
	case TypeU64, TypeI64, TypeF64:
		return 8
	}
	return 0
}

func (t ValueType) valid() bool   { return t <= TypeF64 }
func (t ValueType) isInt() bool   { return t.size() > 0 && t != TypeF32 && t != TypeF64 && t != TypeBool }
func (t ValueType) signed() bool  { return t == TypeI8 || t == TypeI16 || t == TypeI32 || t == TypeI64 }
func (t ValueType) isFloat() bool { return t == TypeF32 || t == TypeF64 }

// Value is one GGUF metadata value: a scalar, a string or an array (whose elements may
// themselves be arrays). Values own their memory (nothing points into a mapping), so
// metadata stays valid after the model is closed.
//
// Arrays of fixed-size scalars are kept in their little-endian file encoding (raw) rather
// than as one Value per element: vocabularies have hundreds of thousands of scores and
// token types, and a packed copy is both smaller and one allocation.
type Value struct {
	typ  ValueType
	num  uint64    // scalar bits: integers sign-extended, F32/F64 as math.Float64bits, bool 0/1
	str  string    // TypeString
	elem ValueType // TypeArray: element type
	n    int       // TypeArray: length
	raw  []byte    // array of fixed-size scalars, n*elem.size() bytes
	strs []string  // array of strings
	arrs []Value   // array of arrays
}

// Type is the value's type.
func (v Value) Type() ValueType { return v.typ }

// ElemType is the element type of an array (meaningless for scalars).
func (v Value) ElemType() ValueType { return v.elem }

// Len is the length of an array, 0 for scalars.
func (v Value) Len() int {
	if v.typ != TypeArray {
		return 0
	}
	return v.n
}

// Uint returns an integer value that is non-negative.
func (v Value) Uint() (uint64, bool) {
	if !v.typ.isInt() {
		return 0, false
	}
	if v.typ.signed() && int64(v.num) < 0 {
		return 0, false
	}
	return v.num, true
}

// Int returns an integer value; an unsigned value above MaxInt64 is refused rather than
// wrapped.
func (v Value) Int() (int64, bool) {
	if !v.typ.isInt() {
		return 0, false
	}
	if !v.typ.signed() && v.num > math.MaxInt64 {
		return 0, false
	}
	return int64(v.num), true
}

// Float returns any numeric value as a float64.
func (v Value) Float() (float64, bool) {
	switch {
	case v.typ.isFloat():
		return math.Float64frombits(v.num), true
	case v.typ.signed():
		return float64(int64(v.num)), true
	case v.typ.isInt():
		return float64(v.num), true
	}
	return 0, false
}

// Str returns a string value.
func (v Value) Str() (string, bool) {
	if v.typ != TypeString {
		return "", false
	}
	return v.str, true
}

// Bool returns a bool value.
func (v Value) Bool() (bool, bool) {
	if v.typ != TypeBool {
		return false, false
	}
	return v.num != 0, true
}

// Strings returns an array of strings.
func (v Value) Strings() ([]string, bool) {
	if v.typ != TypeArray || v.elem != TypeString {
		return nil, false
	}
	return v.strs, true
}

// rawElem decodes element i of a packed scalar array as a scalar Value.
func (v Value) rawElem(i int) Value {
	sz := v.elem.size()
	return scalarFromBytes(v.elem, v.raw[i*sz:(i+1)*sz])
}

// Float32s converts an array of any numeric type to float32.
func (v Value) Float32s() ([]float32, bool) {
	if v.typ != TypeArray || v.elem.size() == 0 || v.elem == TypeBool {
		return nil, false
	}
	out := make([]float32, v.n)
	for i := range out {
		f, _ := v.rawElem(i).Float()
		out[i] = float32(f)
	}
	return out, true
}

// Int32s converts an array of any integer type to int32. Values outside the int32 range
// make it fail rather than wrap silently.
func (v Value) Int32s() ([]int32, bool) {
	if v.typ != TypeArray || !v.elem.isInt() {
		return nil, false
	}
	out := make([]int32, v.n)
	for i := range out {
		x, ok := v.rawElem(i).Int()
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

// Array returns the elements of an array as Values (allocating for packed arrays).
func (v Value) Array() ([]Value, bool) {
	if v.typ != TypeArray {
		return nil, false
	}
	switch {
	case v.elem == TypeArray:
		return v.arrs, true
	case v.elem == TypeString:
		out := make([]Value, len(v.strs))
		for i, s := range v.strs {
			out[i] = StringValue(s)
		}
		return out, true
	default:
		out := make([]Value, v.n)
		for i := range out {
			out[i] = v.rawElem(i)
		}
		return out, true
	}
}

// String formats the value for display; arrays longer than a few elements are
// abbreviated.
func (v Value) String() string {
	switch {
	case v.typ == TypeString:
		return strconv.Quote(abbrev(v.str, 200))
	case v.typ == TypeBool:
		return strconv.FormatBool(v.num != 0)
	case v.typ.isFloat():
		f, _ := v.Float()
		return strconv.FormatFloat(f, 'g', -1, 64)
	case v.typ.signed():
		return strconv.FormatInt(int64(v.num), 10)
	case v.typ.isInt():
		return strconv.FormatUint(v.num, 10)
	case v.typ != TypeArray:
		return "<invalid>"
	}
	const show = 8
	var b strings.Builder
	b.WriteString("[")
	k := min(v.n, show)
	for i := 0; i < k; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		switch v.elem {
		case TypeArray:
			b.WriteString(v.arrs[i].String())
		case TypeString:
			b.WriteString(strconv.Quote(abbrev(v.strs[i], 40)))
		default:
			b.WriteString(v.rawElem(i).String())
		}
	}
	if v.n > k {
		fmt.Fprintf(&b, ", ... (%d %s)", v.n, v.elem)
	}
	b.WriteString("]")
	return b.String()
}

func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// scalarFromBytes decodes a fixed-size scalar of type t from b (len(b) == t.size()).
func scalarFromBytes(t ValueType, b []byte) Value {
	v := Value{typ: t}
	switch t {
	case TypeU8, TypeBool:
		v.num = uint64(b[0])
		if t == TypeBool && v.num != 0 {
			v.num = 1
		}
	case TypeI8:
		v.num = uint64(int64(int8(b[0])))
	case TypeU16:
		v.num = uint64(binary.LittleEndian.Uint16(b))
	case TypeI16:
		v.num = uint64(int64(int16(binary.LittleEndian.Uint16(b))))
	case TypeU32:
		v.num = uint64(binary.LittleEndian.Uint32(b))
	case TypeI32:
		v.num = uint64(int64(int32(binary.LittleEndian.Uint32(b))))
	case TypeF32:
		v.num = math.Float64bits(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
	case TypeU64, TypeI64:
		v.num = binary.LittleEndian.Uint64(b)
	case TypeF64:
		v.num = binary.LittleEndian.Uint64(b)
	}
	return v
}

// appendScalar appends the little-endian encoding of a fixed-size scalar.
func appendScalar(dst []byte, v Value) []byte {
	switch v.typ {
	case TypeU8, TypeI8, TypeBool:
		return append(dst, byte(v.num))
	case TypeU16, TypeI16:
		return binary.LittleEndian.AppendUint16(dst, uint16(v.num))
	case TypeU32, TypeI32:
		return binary.LittleEndian.AppendUint32(dst, uint32(v.num))
	case TypeF32:
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(math.Float64frombits(v.num))))
	case TypeU64, TypeI64, TypeF64:
		return binary.LittleEndian.AppendUint64(dst, v.num)
	}
	return dst
}

// Constructors, mainly for writers and tests.

func StringValue(s string) Value   { return Value{typ: TypeString, str: s} }
func Uint8Value(u uint8) Value     { return Value{typ: TypeU8, num: uint64(u)} }
func Int8Value(i int8) Value       { return Value{typ: TypeI8, num: uint64(int64(i))} }
func Uint16Value(u uint16) Value   { return Value{typ: TypeU16, num: uint64(u)} }
func Int16Value(i int16) Value     { return Value{typ: TypeI16, num: uint64(int64(i))} }
func Uint32Value(u uint32) Value   { return Value{typ: TypeU32, num: uint64(u)} }
func Int32Value(i int32) Value     { return Value{typ: TypeI32, num: uint64(int64(i))} }
func Uint64Value(u uint64) Value   { return Value{typ: TypeU64, num: u} }
func Int64Value(i int64) Value     { return Value{typ: TypeI64, num: uint64(i)} }
func Float32Value(f float32) Value { return Value{typ: TypeF32, num: math.Float64bits(float64(f))} }
func Float64Value(f float64) Value { return Value{typ: TypeF64, num: math.Float64bits(f)} }
func BoolValue(b bool) Value       { return Value{typ: TypeBool, num: b2u(b)} }
func StringsValue(s []string) Value {
	return Value{typ: TypeArray, elem: TypeString, n: len(s), strs: s}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Float32sValue is an array of F32.
func Float32sValue(f []float32) Value {
	raw := make([]byte, 0, 4*len(f))
	for _, x := range f {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
	}
	return Value{typ: TypeArray, elem: TypeF32, n: len(f), raw: raw}
}

// Int32sValue is an array of I32.
func Int32sValue(a []int32) Value {
	raw := make([]byte, 0, 4*len(a))
	for _, x := range a {
		raw = binary.LittleEndian.AppendUint32(raw, uint32(x))
	}
	return Value{typ: TypeArray, elem: TypeI32, n: len(a), raw: raw}
}

// ArrayValue builds an array of elemType from elems, which must all have that type (the
// caller's bug otherwise: it panics, since no file input reaches here).
func ArrayValue(elemType ValueType, elems []Value) Value {
	v := Value{typ: TypeArray, elem: elemType, n: len(elems)}
	for i, e := range elems {
		if e.typ != elemType {
			panic(fmt.Sprintf("loader.ArrayValue: element %d is %s, want %s", i, e.typ, elemType))
		}
	}
	switch {
	case elemType == TypeArray:
		v.arrs = elems
	case elemType == TypeString:
		v.strs = make([]string, len(elems))
		for i, e := range elems {
			v.strs[i] = e.str
		}
	case elemType.size() > 0:
		v.raw = make([]byte, 0, len(elems)*elemType.size())
		for _, e := range elems {
			v.raw = appendScalar(v.raw, e)
		}
	default:
		panic(fmt.Sprintf("loader.ArrayValue: invalid element type %d", uint32(elemType)))
	}
	return v
}

// KV is one metadata key and its value.
type KV struct {
	Key   string
	Value Value
}
