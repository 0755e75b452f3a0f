package loader

import "fmt"

// DType is a tensor element type. The numeric values are GGML's type ids so that GGUF
// tensor infos map directly; types mole can name but not compute with are still listed
// so that `mole info` can show them.
type DType uint32

const (
	F32  DType = 0
	F16  DType = 1
	Q4_0 DType = 2
	Q4_1 DType = 3
	Q5_0 DType = 6
	Q5_1 DType = 7
	Q8_0 DType = 8
	Q8_1 DType = 9
	Q2_K DType = 10
	Q3_K DType = 11
	Q4_K DType = 12
	Q5_K DType = 13
	Q6_K DType = 14
	Q8_K DType = 15
	// The i-quants, ternary and microscaling types: the loader sizes their tensors so
	// that files holding them parse (and `mole info` names them); the engine says which
	// it computes with.
	IQ2_XXS DType = 16
	IQ2_XS  DType = 17
	IQ3_XXS DType = 18
	IQ1_S   DType = 19
	IQ4_NL  DType = 20
	IQ3_S   DType = 21
	IQ2_S   DType = 22
	IQ4_XS  DType = 23
	I8      DType = 24
	I16     DType = 25
	I32     DType = 26
	I64     DType = 27
	F64     DType = 28
	IQ1_M   DType = 29
	BF16    DType = 30
	TQ1_0   DType = 34
	TQ2_0   DType = 35
	MXFP4   DType = 39
)

// mole's own tensor types (docs/format.md). Their ids lie outside llama.cpp's range
// ('M'<<8 and up), so a GGUF reader that does not know them refuses the file instead
// of misreading it. A row of these types is stored with its width rounded up to a
// whole number of blocks (PaddedCols); per-row and per-group parameters live in
// companion tensors named "<matrix>.scale" and "<matrix>.group".
const (
	// MoleQ8 is per-row symmetric int8 (A8W8): one int8 per weight; the row scale is
	// the F32 companion "<name>.scale".
	MoleQ8 DType = 0x4D01
	// MoleA8W4 holds DGQ's unsigned 4-bit codes in GGUF Q4_0's nibble order (16 bytes
	// per 32 codes); "<name>.group" (I8, [rows, groups, 2]: zero point, multiplier S2)
	// and "<name>.scale" (F32 s1 per row) complete it.
	MoleA8W4 DType = 0x4D02
	// MoleRTN4 is the round-to-nearest yardstick: self-contained blocks of 128 weights,
	// f16 scale d, f16 offset m, 64 bytes of codes (same nibble order); w = d*q + m.
	MoleRTN4 DType = 0x4D03
)

// mole's MWQ types (Matryoshka bit-nested weights, docs/quant.md "MWQ").
// Ids are outside llama.cpp's range ('M'<<8 | 0x10..); one block is one group of 128
// weights of one row. MWQBase2/MWQBase5 hold the b1-bit base (f16 scale, f16 zero, b1
// bit-planes of 16 bytes); MWQPlane holds one ±1 residual plane (f16 scale, 16 bytes of
// sign bits). Each plane lives in its own tensor so that reading at fewer bits touches
// fewer bytes.
const (
	MWQPlane DType = 0x4D10
	MWQBase2 DType = 0x4D12
	MWQBase5 DType = 0x4D15
)

type dtypeInfo struct {
	name       string
	blockElems int // elements per block
	blockBytes int // bytes per block
}

var dtypeInfos = map[DType]dtypeInfo{
	F32:  {"F32", 1, 4},
	F16:  {"F16", 1, 2},
	BF16: {"BF16", 1, 2},
	F64:  {"F64", 1, 8},
	I8:   {"I8", 1, 1},
	I16:  {"I16", 1, 2},
	I32:  {"I32", 1, 4},
	I64:  {"I64", 1, 8},
	Q4_0: {"Q4_0", 32, 2 + 16},
	Q4_1: {"Q4_1", 32, 2 + 2 + 16},
	Q5_0: {"Q5_0", 32, 2 + 4 + 16},
	Q5_1: {"Q5_1", 32, 2 + 2 + 4 + 16},
	Q8_0: {"Q8_0", 32, 2 + 32},
	Q8_1: {"Q8_1", 32, 4 + 4 + 32},
	Q2_K: {"Q2_K", 256, 84},
	Q3_K: {"Q3_K", 256, 110},
	Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176},
	Q6_K: {"Q6_K", 256, 210},
	Q8_K: {"Q8_K", 256, 292},

	// Block sizes from ggml's block structs (ggml-common.h): a 256-weight super-block
	// of the i-quants holds an f16 scale and its code and scale arrays; IQ4_NL is 32
	// 4-bit codes and a scale; MXFP4 is 32 FP4 codes and one E8M0 exponent byte.
	IQ2_XXS: {"IQ2_XXS", 256, 2 + 64},
	IQ2_XS:  {"IQ2_XS", 256, 2 + 64 + 8},
	IQ3_XXS: {"IQ3_XXS", 256, 2 + 96},
	IQ1_S:   {"IQ1_S", 256, 2 + 32 + 16},
	IQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	IQ3_S:   {"IQ3_S", 256, 2 + 64 + 8 + 32 + 4},
	IQ2_S:   {"IQ2_S", 256, 2 + 64 + 8 + 8},
	IQ4_XS:  {"IQ4_XS", 256, 2 + 2 + 4 + 128},
	IQ1_M:   {"IQ1_M", 256, 32 + 16 + 8},
	TQ1_0:   {"TQ1_0", 256, 48 + 4 + 2},
	TQ2_0:   {"TQ2_0", 256, 64 + 2},
	MXFP4:   {"MXFP4", 32, 1 + 16},

	// mole's int8 types: see the const block above and docs/format.md.
	MoleQ8:   {"MOLE_Q8", 32, 32},
	MoleA8W4: {"MOLE_A8W4", 32, 16},
	MoleRTN4: {"MOLE_RTN4", 128, 2 + 2 + 64},

	// MWQ: see the const block above and docs/format.md.
	MWQPlane: {"MWQ_PLANE", 128, 2 + 16},
	MWQBase2: {"MWQ_BASE2", 128, 4 + 2*16},
	MWQBase5: {"MWQ_BASE5", 128, 4 + 5*16},
}

// Mole reports whether d is one of mole's own types (ids 0x4D00..0x4DFF: MOLE_Q8,
// MOLE_A8W4, MOLE_RTN4 and the MWQ types), whose rows are stored padded to whole blocks.
func (d DType) Mole() bool { return d>>8 == 0x4D && d.Known() }

// PaddedCols is the stored row width of a matrix of cols columns in type d: cols
// rounded up to a whole number of blocks for mole's types, cols otherwise.
func (d DType) PaddedCols(cols int) int {
	if !d.Mole() {
		return cols
	}
	b := d.BlockElems()
	return (cols + b - 1) / b * b
}

// Known reports whether mole knows the block layout of d (and so can size its tensors).
func (d DType) Known() bool { _, ok := dtypeInfos[d]; return ok }

func (d DType) String() string {
	if in, ok := dtypeInfos[d]; ok {
		return in.name
	}
	return fmt.Sprintf("type%d", uint32(d))
}

// BlockElems is the number of elements in one block of d (1 for plain types, 32 for
// Q8_0/Q4_0, 256 for K-quants).
func (d DType) BlockElems() int { return dtypeInfos[d].blockElems }

// BlockBytes is the size in bytes of one block of d.
func (d DType) BlockBytes() int { return dtypeInfos[d].blockBytes }

// RowBytes returns the byte size of n consecutive elements of type d, or an error when
// the type is unknown or n is not a whole number of blocks.
func (d DType) RowBytes(n int) (int, error) {
	in, ok := dtypeInfos[d]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(d))
	}
	if n < 0 || n%in.blockElems != 0 {
		return 0, fmt.Errorf("%d elements of %s are not a whole number of %d-element blocks", n, in.name, in.blockElems)
	}
	return n / in.blockElems * in.blockBytes, nil
}

// Tensor is a zero-copy view of one tensor in a mapped file.
type Tensor struct {
	Name  string
	Shape []int // outermost first; the last dimension is contiguous
	DType DType
	Data  []byte // exactly the tensor's bytes, a view into the mapping
}

// Elems is the number of elements of t.
func (t *Tensor) Elems() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

func (t *Tensor) String() string {
	return fmt.Sprintf("%s %v %s (%d bytes)", t.Name, t.Shape, t.DType, len(t.Data))
}
