package engine

import (
	"fmt"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// Matrix is a row-major weight matrix used in place from the model file: Rows rows of
// Cols elements, each row RowBytes bytes of DType. Nothing is converted at load time;
// every product dequantises on the fly through the row dot product of its format.
type Matrix struct {
	Name     string
	DType    loader.DType
	Rows     int
	Cols     int
	RowBytes int
	Data     []byte

	dot     func(row []byte, x []float32) float32
	dequant func(dst []float32, src []byte)
}

// newMatrix wraps data (rows*rowBytes bytes) as a matrix; it fails for element types
// mole cannot compute with and for shapes that do not divide into blocks.
func newMatrix(name string, dt loader.DType, rows, cols int, data []byte) (*Matrix, error) {
	m := &Matrix{Name: name, DType: dt, Rows: rows, Cols: cols, Data: data}
	switch dt {
	case loader.F32:
		m.dot, m.dequant = kernels.DotF32Bytes, kernels.DequantF32Bytes
	case loader.F16:
		m.dot, m.dequant = kernels.DotF16, kernels.DequantF16
	case loader.BF16:
		m.dot, m.dequant = kernels.DotBF16, kernels.DequantBF16
	case loader.Q8_0:
		m.dot, m.dequant = kernels.DotQ8_0, kernels.DequantQ8_0
	case loader.Q4_0:
		m.dot, m.dequant = kernels.DotQ4_0, kernels.DequantQ4_0
	default:
		return nil, fmt.Errorf("tensor %s: type %v is not supported (mole computes with F32, F16, BF16, Q8_0, Q4_0)", name, dt)
	}
	rb, err := dt.RowBytes(cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %v", name, err)
	}
	if len(data) != rows*rb {
		return nil, fmt.Errorf("tensor %s: %d bytes, want %d rows x %d bytes", name, len(data), rows, rb)
	}
	m.RowBytes = rb
	return m, nil
}

// Row returns the raw bytes of row i.
func (m *Matrix) Row(i int) []byte { return m.Data[i*m.RowBytes : (i+1)*m.RowBytes] }

// DotRow returns row i · x (len(x) == Cols).
func (m *Matrix) DotRow(i int, x []float32) float32 { return m.dot(m.Row(i), x) }

// RowF32 writes row i as float32 into dst (len >= Cols).
func (m *Matrix) RowF32(i int, dst []float32) { m.dequant(dst[:m.Cols], m.Row(i)) }

// MulVec computes out = M x in parallel over rows on pool p (len(out) >= Rows,
// len(x) == Cols). It does not allocate.
func (m *Matrix) MulVec(p *Pool, out, x []float32) {
	p.mvMu.Lock()
	p.mv = mulVecJob{m: m, out: out, x: x}
	p.RunChunk(m.Rows, rowChunk(p, m), p.mvRun)
	p.mv = mulVecJob{}
	p.mvMu.Unlock()
}

// rowChunk picks a chunk size for a product over m's rows: about four chunks per
// worker, but never so few rows that waking a worker costs more than the rows do
// (a wake-up is worth roughly 16K multiply-adds).
func rowChunk(p *Pool, m *Matrix) int {
	c := (m.Rows + 4*p.workers - 1) / (4 * p.workers)
	return max(c, 16384/max(m.Cols, 1))
}

type mulVecJob struct {
	m      *Matrix
	out, x []float32
}

func (j *mulVecJob) run(lo, hi int) {
	m, x, out := j.m, j.x, j.out
	for i := lo; i < hi; i++ {
		out[i] = m.dot(m.Data[i*m.RowBytes:(i+1)*m.RowBytes], x)
	}
}
