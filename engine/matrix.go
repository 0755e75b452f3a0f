package engine

import (
	"fmt"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// Matrix is a row-major weight matrix used in place from the model file: Rows rows of
// Cols elements, each row RowBytes bytes of DType. Nothing is converted at load time.
// F32/F16/BF16 products dequantise on the fly through the row dot product of the
// format. Q8_0 and Q4_0 products run as llama.cpp computes them: the input vector is
// rounded once to Q8_0 blocks (kernels.QuantizeQ8_0Act) and each row is an integer dot
// product per block (kernels.GemvQ8_0/GemvQ4_0); see Quantized and MulRowsQ.
type Matrix struct {
	Name     string
	DType    loader.DType
	Rows     int
	Cols     int
	RowBytes int
	Data     []byte

	dot     func(row []byte, x []float32) float32
	dequant func(dst []float32, src []byte)
	qk      qkind       // integer kernel for products, qkNone for the float path
	mole    *moleMatrix // MOLE_Q8 / MOLE_A8W4 (matrix_mole.go), bound by bindMole
	mwq     *mwqMatrix  // MWQ base + planes (matrix_mwq.go), bound by bindMWQ
}

// qkind selects the integer GEMV of a Q8_0 or Q4_0 matrix.
type qkind uint8

const (
	qkNone qkind = iota
	qkQ8_0
	qkQ4_0
	qkMole // mole's int8 types: products through moleMatrix.mulRows
	qkMWQ  // MWQ: products through mwqMatrix.mulRows
)

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
		m.dot, m.dequant, m.qk = kernels.DotQ8_0, kernels.DequantQ8_0, qkQ8_0
	case loader.Q4_0:
		m.dot, m.dequant, m.qk = kernels.DotQ4_0, kernels.DequantQ4_0, qkQ4_0
	case loader.MoleQ8, loader.MoleA8W4:
		m.qk = qkMole
	case loader.MWQBase2, loader.MWQBase5:
		m.qk = qkMWQ
	case loader.MoleRTN4:
		// The round-to-nearest yardstick runs as its exact float32 dequantisation, made
		// once at load, so that it uses the SIMD float kernels: only its quality matters,
		// and the scalar 4-bit row dot made a heldout perplexity run take many minutes.
		return rtn4AsF32(name, rows, cols, data)
	default:
		return nil, fmt.Errorf("tensor %s: type %v is not supported (mole computes with F32, F16, BF16, Q8_0, Q4_0 and its own types)", name, dt)
	}
	rb, err := dt.RowBytes(dt.PaddedCols(cols))
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %v", name, err)
	}
	if len(data) != rows*rb {
		return nil, fmt.Errorf("tensor %s: %d bytes, want %d rows x %d bytes", name, len(data), rows, rb)
	}
	m.RowBytes = rb
	return m, nil
}

// rtn4AsF32 dequantises a MOLE_RTN4 matrix into a float32 Matrix.
func rtn4AsF32(name string, rows, cols int, data []byte) (*Matrix, error) {
	dt := loader.MoleRTN4
	padded := dt.PaddedCols(cols)
	rb, err := dt.RowBytes(padded)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %v", name, err)
	}
	if len(data) != rows*rb {
		return nil, fmt.Errorf("tensor %s: %d bytes, want %d rows x %d bytes", name, len(data), rows, rb)
	}
	f := make([]float32, rows*cols)
	row := make([]float32, padded)
	for r := range rows {
		dequantRTN4(row, data[r*rb:(r+1)*rb])
		copy(f[r*cols:(r+1)*cols], row[:cols])
	}
	return newMatrix(name, loader.F32, rows, cols, loader.F32Bytes(f))
}

// Row returns the raw bytes of row i.
func (m *Matrix) Row(i int) []byte { return m.Data[i*m.RowBytes : (i+1)*m.RowBytes] }

// DotRow returns row i · x (len(x) == Cols).
func (m *Matrix) DotRow(i int, x []float32) float32 {
	if m.mole != nil {
		return m.mole.dotRow(i, x)
	}
	if m.mwq != nil {
		return m.mwq.dotRow(i, x)
	}
	return m.dot(m.Row(i), x)
}

// RowF32 writes row i as float32 into dst (len >= Cols).
func (m *Matrix) RowF32(i int, dst []float32) {
	if m.mole != nil {
		m.mole.rowF32(i, dst[:m.Cols])
		return
	}
	if m.mwq != nil {
		m.mwq.rowF32(i, dst[:m.Cols])
		return
	}
	m.dequant(dst[:m.Cols], m.Row(i))
}

// Quantized reports whether products with m run on integer kernels against an input
// quantised to Q8_0 blocks (Q8_0 and Q4_0 weights); MulRowsQ computes them.
func (m *Matrix) Quantized() bool { return m.qk != qkNone }

// MulRowsQ writes rows lo..hi-1 of M·x into out[:hi-lo] for a Quantized matrix, where xq
// is x quantised by kernels.QuantizeQ8_0Act (kernels.Q8ActBytes(Cols) bytes). Every row
// rounds the same whichever block of rows it is computed in.
func (m *Matrix) MulRowsQ(out []float32, lo, hi int, xq []byte) {
	if m.mole != nil {
		m.mole.mulRows(out, lo, hi, xq)
		return
	}
	if m.mwq != nil {
		m.mwq.mulRows(out, lo, hi, xq)
		return
	}
	w := m.Data[lo*m.RowBytes : hi*m.RowBytes]
	if m.qk == qkQ4_0 {
		kernels.GemvQ4_0(out[:hi-lo], w, m.Cols, xq)
	} else {
		kernels.GemvQ8_0(out[:hi-lo], w, m.Cols, xq)
	}
}

// MulVec computes out = M x in parallel over rows on pool p (len(out) >= Rows,
// len(x) == Cols). It does not allocate (after the first call for a quantised matrix
// of a new width, which sizes the pool's buffer for the quantised input).
func (m *Matrix) MulVec(p *Pool, out, x []float32) {
	p.mvMu.Lock()
	// Deferred so that a panic in the product (re-raised by the pool) leaves MulVec usable.
	defer p.mvDone()
	xq := p.mv.xq
	if m.Quantized() {
		if n := m.actBytes(m.Cols); cap(xq) < n {
			xq = make([]byte, n)
		}
		m.quantAct(xq[:m.actBytes(m.Cols)], x[:m.Cols])
	}
	p.mv = mulVecJob{m: m, out: out, x: x, xq: xq}
	p.RunChunk(m.Rows, rowChunk(p, m), p.mvRun)
}

// mvDone ends a MulVec: it drops the job's references but keeps the quantised input's
// buffer, and unlocks.
func (p *Pool) mvDone() {
	p.mv = mulVecJob{xq: p.mv.xq}
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
	xq     []byte // x quantised, for Quantized matrices; the buffer outlives the job
}

func (j *mulVecJob) run(lo, hi int) {
	m, x, out := j.m, j.x, j.out
	if m.Quantized() {
		m.MulRowsQ(out[lo:hi], lo, hi, j.xq)
		return
	}
	for i := lo; i < hi; i++ {
		out[i] = m.dot(m.Data[i*m.RowBytes:(i+1)*m.RowBytes], x)
	}
}
