package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"unsafe"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/moe"
)

// ConvertMoLEStream is ConvertMoLE for models too large to hold: it reads the GGUF file m
// was loaded from and writes the MoLE file at path layer by layer, holding one layer's
// factors (in the output type) and one expert's float32 weights at a time. Every tensor
// other than the routed experts is copied byte for byte; the latent factors are written
// as dt (F32, F16, BF16, Q8_0 or Q4_0; a matrix whose width a Q type cannot split is
// written F16, as WriteGGUFWith does).
//
// It does the plain Frobenius factorisation only (no --whiten, --refit, --baseline,
// --groups or --energy: the ranks must be known before the header is written), with the
// n x n Gram matrix Σ W_eᵀ W_e accumulated from float32 products (kernels
// DotF32BytesMulti, in float64 across experts). Where the rank is well below the width,
// the top-r eigenvectors come from randomized subspace iteration (streamOversample extra
// directions, streamPowerIters power iterations, Rayleigh–Ritz), because a full
// eigendecomposition of each 2048 x 2048 Gram matrix costs minutes in gonum; the energy
// it reports is exactly the energy the written basis keeps (its Ritz values), whatever
// the solver's accuracy. Otherwise the eigendecomposition is gonum's, as in ConvertMoLE.
func ConvertMoLEStream(ctx context.Context, m *Model, path string, o MoLEOptions, dt loader.DType) (*MoLEReport, error) {
	out, err := loader.CreateAtomic(ctx, path)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	rep, err := ConvertMoLEStreamTo(ctx, m, out, o, dt)
	if err != nil {
		return nil, err
	}
	return rep, out.Commit()
}

// ConvertMoLEStreamTo is ConvertMoLEStream into out, which the caller commits (created
// before any work by loader.CreateAtomic, so that an unwritable destination fails first).
func ConvertMoLEStreamTo(ctx context.Context, m *Model, out *loader.AtomicFile, o MoLEOptions, dt loader.DType) (*MoLEReport, error) {
	path := out.Path()
	c := &m.Config
	switch {
	case m.src == nil || m.src.GGUF == nil:
		return nil, errors.New("convert-mole (streaming): the model must be loaded from a GGUF file")
	case c.NExpert == 0:
		return nil, errors.New("convert-mole: the model has no routed experts")
	case c.NFFShared > 0:
		return nil, errors.New("convert-mole: models with a shared expert (Qwen2-MoE) are not supported yet")
	case o.Rank <= 0:
		return nil, errors.New("convert-mole (streaming): needs a fixed --rank")
	case o.Whiten || o.RefitA || o.Fit > 0 || o.Alloc || o.Baseline || o.Groups > 1 || o.ProjRank != [3]int{} ||
		o.Calib != nil || o.Calibration != nil:
		return nil, errors.New("convert-mole (streaming): only the plain factorisation (no --whiten, --refit, --fit, --alloc, --baseline, --groups, calibration)")
	}
	if _, ok := ggufFileType[dt]; !ok {
		return nil, fmt.Errorf("convert-mole (streaming): cannot write %v", dt)
	}
	nm, ne := c.NFFExpert, c.NEmbd
	r := min(o.Rank, ne)
	rep := &MoLEReport{Method: "mole", Groups: 1, Layers: make([]MoLELayer, c.NLayer)}
	moeLayers := 0
	for l := range m.Layers {
		L := &m.Layers[l]
		if L.Router == nil {
			continue
		}
		if L.Latent != nil {
			return nil, errors.New("convert-mole: the model is already latent")
		}
		if len(L.ExpGate) != c.NExpert {
			return nil, fmt.Errorf("convert-mole (streaming): layer %d has %d experts", l, len(L.ExpGate))
		}
		moeLayers++
		rep.Layers[l] = MoLELayer{RankGate: r, RankUp: r, RankDown: r}
		rep.ParamsBefore += 3 * int64(c.NExpert) * int64(nm) * int64(ne)
		rep.ParamsAfter += 3 * moe.LatentParams(c.NExpert, nm, ne, r, 1)
	}
	o.Rank = r

	w := loader.NewGGUFWriter()
	var expType loader.DType
	if t, ok := m.src.Tensor(fmt.Sprintf("blk.%d.ffn_gate_exps.weight", firstMoE(m))); ok {
		expType = t.DType
	}
	for _, kv := range m.src.GGUF.KV {
		// The file type stays only while it still describes the weights.
		if kv.Key == "general.file_type" && dt != expType {
			continue
		}
		w.Set(kv.Key, kv.Value)
	}
	// A latent file has no expert tensor to read the expert width from, so it is stated.
	if arch, ok := m.src.GGUF.String("general.architecture"); ok {
		w.Set(arch+".expert_feed_forward_length", loader.Uint32Value(uint32(nm)))
	}
	meta := rep.MoLEMeta(o)
	meta["mole.mole.eigen_solver"] = loader.StringValue(fmt.Sprintf(
		"streaming: float32 Gram; randomized subspace iteration (r+%d directions, %d power iterations) below %d%% of the width, else full",
		streamOversample, streamPowerIters, streamFullPct))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range meta {
			if !yield(k) {
				return
			}
		}
	}) {
		w.Set(k, meta[k])
	}

	sc := &streamConv{ctx: ctx, m: m, pool: m.pool, o: o, dt: dt, rep: rep, total: int64(moeLayers)}
	if sc.pool == nil {
		sc.pool = NewPool(0)
		defer sc.pool.Close()
	}
	expName := func(l int, p string) string { return fmt.Sprintf("blk.%d.ffn_%s_exps.weight", l, p) }
	isExp := map[string]int{}
	for l := range m.Layers {
		if m.Layers[l].Router != nil {
			for _, p := range []string{"gate", "up", "down"} {
				isExp[expName(l, p)] = l
			}
		}
	}
	var err error
	add := func(name string, dt loader.DType, shape []int, fill func(io.Writer) error) {
		if err == nil {
			err = w.AddTensorFunc(name, dt, shape, fill)
		}
	}
	for _, t := range m.src.GGUF.Tensors {
		l, exp := isExp[t.Name]
		if !exp {
			add(t.Name, t.DType, t.Shape, func(out io.Writer) error {
				_, err := out.Write(t.Data)
				dropPages(t.Data)
				return err
			})
			continue
		}
		if t.Name != expName(l, "gate") {
			continue // the latent tensors of l take the gate experts' place
		}
		for k, sh := range streamShapes(c, r) {
			ldt := dt
			if (dt == loader.Q8_0 || dt == loader.Q4_0) && sh.cols%kernels.QK != 0 {
				ldt = loader.F16
			}
			add(fmt.Sprintf(sh.name, l), ldt, sh.shape, func(out io.Writer) error { return sc.fill(out, l, k, ldt) })
		}
	}
	if err != nil {
		return nil, fmt.Errorf("convert-mole: %w", err)
	}
	if err := w.Encode(out); err != nil {
		return nil, fmt.Errorf("convert-mole: write %s: %w", path, err)
	}
	return rep, nil
}

// Solver settings of ConvertMoLEStream (recorded in mole.mole.eigen_solver).
const (
	streamOversample = 64
	streamPowerIters = 2
	streamFullPct    = 75 // a rank+oversample at least this percentage of n uses the full eigensolver
	streamTile       = 32
)

func firstMoE(m *Model) int {
	for l := range m.Layers {
		if m.Layers[l].Router != nil {
			return l
		}
	}
	return 0
}

// streamShapes are a latent layer's tensors in the order latentTensors lists them.
func streamShapes(c *Config, r int) []struct {
	name  string
	shape []int
	cols  int
} {
	n, m, N := c.NEmbd, c.NFFExpert, c.NExpert
	return []struct {
		name  string
		shape []int
		cols  int
	}{
		{latGateIn, []int{r, n}, n}, {latGateExps, []int{N, m, r}, r},
		{latUpIn, []int{r, n}, n}, {latUpExps, []int{N, m, r}, r},
		{latDownOut, []int{n, r}, r}, {latDownExps, []int{N, r, m}, m},
	}
}

// streamConv holds the layer being written: its six tensors, encoded, dropped as each
// is written.
type streamConv struct {
	ctx   context.Context
	m     *Model
	pool  *Pool
	o     MoLEOptions
	dt    loader.DType
	rep   *MoLEReport
	total int64
	done  int64

	layer int
	data  [6][]byte
}

func (sc *streamConv) fill(out io.Writer, l, k int, dt loader.DType) error {
	if k == 0 {
		if err := sc.ctx.Err(); err != nil {
			return err
		}
		if err := sc.convertLayer(l, dt); err != nil {
			return fmt.Errorf("layer %d: %w", l, err)
		}
	}
	if sc.layer != l || sc.data[k] == nil {
		return fmt.Errorf("layer %d: latent tensor %d written out of order", l, k)
	}
	_, err := out.Write(sc.data[k])
	sc.data[k] = nil
	return err
}

// convertLayer factors layer l's three projections and encodes the six tensors.
func (sc *streamConv) convertLayer(l int, dt loader.DType) error {
	c := &sc.m.Config
	L := &sc.m.Layers[l]
	r := sc.o.Rank
	n, m := c.NEmbd, c.NFFExpert
	lr := &sc.rep.Layers[l]
	sc.layer = l
	enc := func(dt loader.DType, rows, cols int, mats ...[]float32) []byte {
		if (dt == loader.Q8_0 || dt == loader.Q4_0) && cols%kernels.QK != 0 {
			dt = loader.F16
		}
		var b []byte
		for _, a := range mats {
			for i := range rows {
				b = EncodeRow(b, dt, a[i*cols:(i+1)*cols])
			}
		}
		return b
	}
	for p, ms := range [][]*Matrix{L.ExpGate, L.ExpUp, L.ExpDown} {
		in := p < 2
		basis, experts, energy, err := sc.project(ms, in, r, uint64(l*3+p))
		if err != nil {
			return err
		}
		switch p {
		case 0:
			lr.EnergyGate = energy
		case 1:
			lr.EnergyUp = energy
		case 2:
			lr.EnergyDown = energy
		}
		if in {
			sc.data[2*p] = enc(dt, r, n, basis)
			sc.data[2*p+1] = enc(dt, m, r, experts...)
		} else {
			ct := make([]float32, n*r) // C = Bᵀ
			for a := range r {
				for i := range n {
					ct[i*r+a] = basis[a*n+i]
				}
			}
			sc.data[4] = enc(dt, n, r, ct)
			sc.data[5] = enc(dt, r, m, experts...)
		}
		for _, mm := range ms {
			dropPages(mm.Data)
		}
	}
	sc.done++
	if sc.o.Progress != nil {
		sc.o.Progress("factoring", sc.done, sc.total)
	}
	return nil
}

// project factors one projection's experts at rank r: the basis B (r x n, orthonormal
// rows; C = Bᵀ for down), every expert's small factor (A_e = W_e Bᵀ, m x r; or D_e = B
// W_e, r x m) and the fraction of Σ ||W_e||² the basis keeps.
func (sc *streamConv) project(ms []*Matrix, in bool, r int, seed uint64) ([]float32, [][]float32, float64, error) {
	c := &sc.m.Config
	n, m := c.NEmbd, c.NFFExpert
	w := make([]float32, n*m)  // the expert as stored (m x n for gate/up, n x m for down)
	wt := make([]float32, n*m) // its transpose
	load := func(mm *Matrix) {
		for i := range mm.Rows {
			mm.RowF32(i, w[i*mm.Cols:(i+1)*mm.Cols])
		}
		transpose(wt, w, mm.Rows, mm.Cols)
	}
	gram := make([]float64, n*n)
	for _, mm := range ms {
		if err := sc.ctx.Err(); err != nil {
			return nil, nil, 0, err
		}
		load(mm)
		x := w // rows of length m whose Gram is Σ W Wᵀ (down) or Σ Wᵀ W (gate/up)
		if in {
			x = wt
		}
		abt(sc.pool, x, n, x, n, m, gram, true)
	}
	for i := range n {
		for j := range i {
			gram[j*n+i] = gram[i*n+j]
		}
	}
	basis, energy, err := topEigen(sc.pool, gram, n, r, seed)
	if err != nil {
		return nil, nil, 0, err
	}
	experts := make([][]float32, len(ms))
	acc := make([]float64, m*r)
	for e, mm := range ms {
		if err := sc.ctx.Err(); err != nil {
			return nil, nil, 0, err
		}
		load(mm)
		clear(acc)
		if in {
			abt(sc.pool, w, m, basis, r, n, acc, false) // A_e = W_e Bᵀ
		} else {
			abt(sc.pool, basis, r, wt, m, n, acc, false) // D_e = B W_e
		}
		experts[e] = make([]float32, m*r)
		for i, v := range acc {
			experts[e][i] = float32(v)
		}
	}
	return basis, experts, energy, nil
}

func transpose(dst, src []float32, rows, cols int) {
	const b = 32
	for i0 := 0; i0 < rows; i0 += b {
		for j0 := 0; j0 < cols; j0 += b {
			for i := i0; i < min(i0+b, rows); i++ {
				for j := j0; j < min(j0+b, cols); j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	}
}

func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// abt adds X Yᵀ to out (p x q, row-major) for row-major X (p x L) and Y (q x L), in
// tiles of streamTile x streamTile run on the pool; lower computes only the tiles on
// or below the diagonal (out[i*q+j] for j <= i), for a Gram matrix.
func abt(pool *Pool, x []float32, p int, y []float32, q int, L int, out []float64, lower bool) {
	tp, tq := (p+streamTile-1)/streamTile, (q+streamTile-1)/streamTile
	pool.RunChunk(tp*tq, 1, func(lo, hi int) {
		var xs [8][]float32
		var res [8]float32
		for t := lo; t < hi; t++ {
			ti, tj := t/tq, t%tq
			if lower && tj > ti {
				continue
			}
			i1, j1 := min((ti+1)*streamTile, p), min((tj+1)*streamTile, q)
			for i := ti * streamTile; i < i1; i++ {
				row := f32Bytes(x[i*L : (i+1)*L])
				for j0 := tj * streamTile; j0 < j1; j0 += 8 {
					k := min(8, j1-j0)
					for g := range k {
						xs[g] = y[(j0+g)*L : (j0+g+1)*L]
					}
					kernels.DotF32BytesMulti(row, xs[:k], res[:k])
					o := out[i*q+j0 : i*q+j0+k]
					for g := range k {
						if !lower || j0+g <= i {
							o[g] += float64(res[g])
						}
					}
				}
			}
		}
	})
}

// topEigen returns the top-r eigenvectors of the symmetric n x n matrix g as the rows of
// B (r x n, float32) and the fraction of g's trace their eigenvalues (Ritz values, for
// the randomized solver) hold.
func topEigen(pool *Pool, g []float64, n, r int, seed uint64) ([]float32, float64, error) {
	var trace float64
	for i := range n {
		trace += g[i*n+i]
	}
	k := min(n, r+streamOversample)
	if 100*k >= streamFullPct*n {
		var es mat.EigenSym
		if !es.Factorize(mat.NewSymDense(n, g), true) {
			return nil, 0, fmt.Errorf("eigendecomposition of the %d x %d Gram matrix failed", n, n)
		}
		vals := es.Values(nil)
		var v mat.Dense
		es.VectorsTo(&v)
		b := make([]float32, r*n)
		var kept float64
		for a := range r {
			col := n - 1 - a // ascending order
			kept += max(vals[col], 0)
			for i := range n {
				b[a*n+i] = float32(v.At(i, col))
			}
		}
		return b, energyFrac(kept, trace), nil
	}
	gf := make([]float32, n*n)
	for i, v := range g {
		gf[i] = float32(v)
	}
	// Q (n x k, orthonormal columns) is kept transposed (qt, k x n) for the products.
	rng := rand.New(rand.NewPCG(seed+1, 0x6d6f6c65))
	qt := make([]float32, k*n)
	for i := range qt {
		qt[i] = float32(rng.NormFloat64())
	}
	yt := make([]float64, k*n)
	q := make([]float64, n*k) // Q, n x k, float64
	tau := make([]float64, k)
	work := make([]float64, 1)
	orth := func() { // q, qt = an orthonormal basis of the rows of yt
		for c := range k {
			for i := range n {
				q[i*k+c] = yt[c*n+i]
			}
		}
		a := blas64.General{Rows: n, Cols: k, Stride: k, Data: q}
		lapack64.Geqrf(a, tau, work, -1)
		if need := int(work[0]); need > len(work) {
			work = make([]float64, need)
		}
		lapack64.Geqrf(a, tau, work, len(work))
		lapack64.Orgqr(a, tau, work, -1)
		if need := int(work[0]); need > len(work) {
			work = make([]float64, need)
		}
		lapack64.Orgqr(a, tau, work, len(work))
		for c := range k {
			for i := range n {
				qt[c*n+i] = float32(q[i*k+c])
			}
		}
	}
	for range streamPowerIters + 1 {
		clear(yt)
		abt(pool, qt, k, gf, n, n, yt, false) // (G Q)ᵀ, G symmetric
		orth()
	}
	clear(yt)
	abt(pool, qt, k, gf, n, n, yt, false)
	zt := make([]float32, k*n)
	for i, v := range yt {
		zt[i] = float32(v)
	}
	t := make([]float64, k*k)
	abt(pool, qt, k, zt, k, n, t, false) // Qᵀ G Q
	for i := range k {
		for j := range i {
			v := (t[i*k+j] + t[j*k+i]) / 2
			t[i*k+j], t[j*k+i] = v, v
		}
	}
	var es mat.EigenSym
	if !es.Factorize(mat.NewSymDense(k, t), true) {
		return nil, 0, fmt.Errorf("eigendecomposition of the %d x %d Rayleigh quotient failed", k, k)
	}
	vals := es.Values(nil)
	var u mat.Dense
	es.VectorsTo(&u)
	ur := mat.NewDense(k, r, nil) // the top r Ritz vectors, descending
	var kept float64
	for a := range r {
		col := k - 1 - a
		kept += max(vals[col], 0)
		for c := range k {
			ur.Set(c, a, u.At(c, col))
		}
	}
	var v mat.Dense // V = Q U_r, n x r
	v.Mul(mat.NewDense(n, k, q), ur)
	b := make([]float32, r*n)
	for a := range r {
		for i := range n {
			b[a*n+i] = float32(v.At(i, a))
		}
	}
	return b, energyFrac(kept, trace), nil
}

func energyFrac(kept, total float64) float64 {
	if total <= 0 || math.IsNaN(total) {
		return 1
	}
	return min(kept/total, 1)
}

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
