package engine

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"unsafe"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/sched"
)

// Running under a memory budget (docs/memory-budget.md; package sched): the MWQ expert matrices of a
// budgeted model take their base and plane bytes from a sched.Cache instead of the file
// mapping. The MoE expert path of Forward (ffnBlock) and of Batch (ffn) hands the router's
// choice to the cache, which plans widths, loads and evictions and starts its I/O worker,
// then computes the experts as their planes arrive (the cache's compute order: hottest
// first for HEBF) and sums their outputs in the router's order, as the resident path
// does, so that the results are bit for bit those of a resident run at the same widths.
//
// Models without a budget never reach this file: the only cost on their path is one nil
// check of Model.sched per MoE layer.

// schedGlue binds one model's experts to its cache. Plan..Finish of a layer runs under mu,
// so States or Batches of one model may still run from several goroutines.
type schedGlue struct {
	m  *Model
	c  *sched.Cache
	mu sync.Mutex

	// Per plan entry j: gate, up and down bound to the cache's views of entry j's planes.
	shadow [][3]Matrix
	mw     [][3]mwqMatrix

	experts, tokens []int32
	inv             []int // expert slot of the router's order -> plan entry (Forward)
	perm            []batchPart

	// Forward's pipelined FFN (sched_forward.go).
	f       *ffn
	upBase  int
	upRun   func(lo, hi int)
	dnLo    int // first part of the down group
	dnHi    int
	dnRun   func(lo, hi int)
	partOut []float32 // (K+1) * NEmbd: each part's down product, summed in router order
	ne      int
	onLayer func(l int, plan []sched.Entry) // test hook: the plan of every layer step
}

// schedOf returns m's glue, nil when m runs without a budget.
func (m *Model) schedOf() *schedGlue { return m.sched }

// ExpertLayout describes where m's MWQ expert planes lie in its file, for sched. It fails
// for models that are not GGUF files with MWQ experts in every layer, and for weights
// copied to anonymous memory (--load copy), which a budget cannot limit.
func (m *Model) ExpertLayout() (*sched.Layout, error) {
	lm := m.src
	if lm == nil || lm.GGUF == nil {
		return nil, errors.New("a memory budget needs a GGUF file (MWQ models are written as GGUF)")
	}
	if lm.LoadMode() != loader.LoadMmap {
		return nil, errors.New("a memory budget needs the weights in the file mapping (--load mmap), not copied to memory")
	}
	b1, K, ok := m.MWQBits()
	if !ok {
		return nil, errors.New("a memory budget needs MWQ experts (quantize with --type mwq24 or mwq58)")
	}
	c := &m.Config
	// File offsets of the tensors: a second mapping of the file, parsed again, names
	// every tensor's offset; our views are found by address among the loaded tensors.
	mp, err := loader.Map(lm.Path)
	if err != nil {
		return nil, err
	}
	defer mp.Close()
	g2, err := loader.ParseGGUF(lm.Path, mp.Data)
	if err != nil {
		return nil, err
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mp.Data)))
	fileOff := make(map[string]int64, len(g2.Tensors))
	for _, t := range g2.Tensors {
		if len(t.Data) > 0 {
			fileOff[t.Name] = int64(uintptr(unsafe.Pointer(unsafe.SliceData(t.Data))) - base)
		}
	}
	type span struct {
		start uintptr
		n     int
		off   int64
	}
	spans := make([]span, 0, len(lm.Tensors))
	var total int64
	for _, t := range lm.Tensors {
		total += int64(len(t.Data))
		if len(t.Data) == 0 {
			continue
		}
		off, ok := fileOff[t.Name]
		if !ok {
			return nil, fmt.Errorf("tensor %s: not found in a second reading of %s", t.Name, lm.Path)
		}
		spans = append(spans, span{uintptr(unsafe.Pointer(unsafe.SliceData(t.Data))), len(t.Data), off})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	offOf := func(v []byte) (int64, error) {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
		i := sort.Search(len(spans), func(i int) bool { return spans[i].start > p }) - 1
		if i < 0 || p+uintptr(len(v)) > spans[i].start+uintptr(spans[i].n) {
			return 0, errors.New("an expert plane lies outside the file's tensors")
		}
		return spans[i].off + int64(p-spans[i].start), nil
	}
	lay := &sched.Layout{Path: lm.Path, NLayer: c.NLayer, NExpert: c.NExpert, TopK: c.NExpertUsed, BaseBits: b1, MaxBits: K}
	lay.Units = make([][][]sched.Unit, c.NLayer)
	var expert int64
	for l := range m.Layers {
		L := &m.Layers[l]
		if L.Router == nil || len(L.ExpGate) != c.NExpert {
			return nil, fmt.Errorf("layer %d has no routed experts: a memory budget needs MoE layers throughout", l)
		}
		lay.Units[l] = make([][]sched.Unit, c.NExpert)
		for e := range c.NExpert {
			us := make([]sched.Unit, K-b1+1)
			for p, mm := range [3]*Matrix{L.ExpGate[e], L.ExpUp[e], L.ExpDown[e]} {
				w := mm.mwq
				if w == nil || w.b1 != b1 || w.maxBits != K {
					return nil, fmt.Errorf("layer %d expert %d (%s): not MWQ at %d..%d bits like the others", l, e, mm.Name, b1, K)
				}
				for k := range us {
					v := w.base
					if k > 0 {
						v = w.planes[k-1]
					}
					off, err := offOf(v)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", mm.Name, err)
					}
					us[k].Off[p], us[k].Len[p], us[k].View[p] = off, len(v), v
					expert += int64(len(v))
				}
			}
			lay.Units[l][e] = us
		}
	}
	lay.Resident = total - expert
	return lay, nil
}

// SetMemBudget runs m's experts from a budgeted cache of their planes (package sched):
// o.Budget bytes for the always-resident weights plus the cache. A budget below what
// must stay resident plus one layer's experts at their base width is refused with an
// error that says so. It returns the cache (for its Stats); ClearMemBudget ends it. It
// must not be called while a State or Batch of m runs.
func (m *Model) SetMemBudget(o sched.Options) (*sched.Cache, error) {
	lay, err := m.ExpertLayout()
	if err != nil {
		return nil, err
	}
	return m.setMemBudget(lay, o)
}

func (m *Model) setMemBudget(lay *sched.Layout, o sched.Options) (*sched.Cache, error) {
	m.ClearMemBudget()
	c, err := sched.New(lay, o)
	if err != nil {
		return nil, err
	}
	// The cache holds the experts now: pages of the mapping a run without a budget
	// faulted in leave the resident set.
	lay.DropMapped()
	cfg := &m.Config
	g := &schedGlue{m: m, c: c, ne: cfg.NEmbd}
	nb := lay.MaxBits - lay.BaseBits
	g.shadow = make([][3]Matrix, cfg.NExpert)
	g.mw = make([][3]mwqMatrix, cfg.NExpert)
	for j := range g.mw {
		for p := range g.mw[j] {
			g.mw[j][p].planes = make([][]byte, nb)
		}
	}
	g.experts = make([]int32, cfg.NExpert)
	g.tokens = make([]int32, cfg.NExpert)
	g.inv = make([]int, cfg.NExpertUsed)
	g.perm = make([]batchPart, 0, cfg.NExpert+1)
	g.partOut = make([]float32, (cfg.NExpertUsed+1)*cfg.NEmbd)
	g.upRun = g.up
	g.dnRun = g.down
	m.sched = g
	return c, nil
}

// MemBudget returns the cache of a model running under a budget (nil otherwise).
func (m *Model) MemBudget() *sched.Cache {
	if g := m.schedOf(); g != nil {
		return g.c
	}
	return nil
}

// ClearMemBudget returns m to its resident path and closes its cache (nothing when m has
// no budget). It must not be called while a State or Batch of m runs.
func (m *Model) ClearMemBudget() error {
	g := m.schedOf()
	if g == nil {
		return nil
	}
	m.sched = nil
	return g.c.Close()
}

// bind points plan entry j's shadow matrices at the cache's views of its planes, at the
// entry's width, copying everything else from the expert's own matrices.
func (g *schedGlue) bind(j int, L *Layer, en sched.Entry) (gate, up, down *Matrix) {
	src := [3]*Matrix{L.ExpGate[en.Expert], L.ExpUp[en.Expert], L.ExpDown[en.Expert]}
	for p := range 3 {
		sh, mw, s := &g.shadow[j][p], &g.mw[j][p], src[p]
		*sh = *s
		w := s.mwq
		mw.b1, mw.maxBits, mw.cols, mw.groups = w.b1, w.maxBits, w.cols, w.groups
		mw.base = g.c.View(j, 0, p)
		n := en.Bits - w.b1
		for k := 0; k < n; k++ {
			mw.planes[k] = g.c.View(j, k+1, p)
		}
		mw.use = mw.planes[:n]
		sh.mwq = mw
		sh.Data = mw.base
	}
	return &g.shadow[j][0], &g.shadow[j][1], &g.shadow[j][2]
}

// forwardFFN is ffnBlock's MoE branch under a budget, after routing: s.expIdx/s.expW hold
// the router's choice and s.ff is reset.
func (g *schedGlue) forwardFFN(s *State, p *Pool, L *Layer, l int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := &s.ff
	K := len(s.expIdx)
	for j, e := range s.expIdx {
		g.experts[j], g.tokens[j] = e, 1
	}
	plan := g.c.Plan(l, g.experts[:K], g.tokens[:K])
	if g.onLayer != nil {
		g.onLayer(l, plan)
	}
	// Parts in the cache's compute order, so that each ready run of entries is one
	// contiguous range of hidden rows; the shared expert last.
	for t, en := range plan {
		gate, up, down := g.bind(t, L, en)
		f.add(gate, up, down, s.expW[en.Index])
		g.inv[en.Index] = t
	}
	if L.ShGate != nil {
		f.add(L.ShGate, L.ShUp, L.ShDown, kernels.Sigmoid(L.ShGateInp.DotRow(0, s.xn)))
	}
	cols := g.ne
	if f.upQ {
		s.m.quantAct(s.xq[:s.m.actBytes(cols)], s.xn)
		f.xq = s.xq
	}
	f.hq = s.hq
	g.f = f
	if L.ShGate != nil { // resident: computed while the first loads run
		g.runParts(s, p, K, K+1)
	}
	for i := 0; i < K; {
		j := g.c.Wait(i)
		g.runParts(s, p, i, j)
		g.c.Computed(j)
		i = j
	}
	g.c.Finish()
	// The sum of Forward's down pass (ffn.down, integer path): parts in the router's
	// order, then the shared expert, each added as out += w*v.
	out := s.tmp[:cols]
	clear(out)
	for j := 0; j < f.n; j++ {
		t := K
		if j < K {
			t = g.inv[j]
		}
		e := &f.ex[t]
		v := g.partOut[t*cols : (t+1)*cols]
		for i, x := range v {
			out[i] += e.w * x
		}
	}
}

// runParts computes parts [a, b) of s.ff: their up rows, silu, the encoding of their
// hidden activations and their down products into partOut.
func (g *schedGlue) runParts(s *State, p *Pool, a, b int) {
	f := g.f
	lo, hi := f.ex[a].off, f.ex[b-1].off+f.ex[b-1].n
	g.upBase = lo
	p.RunChunk(hi-lo, chunkFor(p, hi-lo, g.ne), g.upRun)
	for t := a; t < b; t++ {
		if e := &f.ex[t]; e.down.Quantized() {
			s.m.quantAct(s.hq[e.qoff:e.qoff+s.m.actBytes(e.n)], f.h[e.off:e.off+e.n])
		}
	}
	g.dnLo, g.dnHi = a, b
	p.RunChunk(g.ne, chunkFor(p, g.ne, hi-lo), g.dnRun)
}

func (g *schedGlue) up(lo, hi int) { g.f.up(lo+g.upBase, hi+g.upBase) }

// down writes rows [lo, hi) of each part's down product, as ffn.down computes it.
func (g *schedGlue) down(lo, hi int) {
	f := g.f
	for t := g.dnLo; t < g.dnHi; t++ {
		e := &f.ex[t]
		d := e.down
		out := g.partOut[t*g.ne+lo : t*g.ne+hi]
		if d.Quantized() {
			d.MulRowsQ(out, lo, hi, f.hq[e.qoff:e.qoff+d.actBytes(e.n)])
			continue
		}
		for i := lo; i < hi; i++ {
			out[i-lo] = d.dot(d.Data[i*d.RowBytes:(i+1)*d.RowBytes], f.h[e.off:e.off+e.n])
		}
	}
}

// batchFFN is Batch.ffn's MoE branch under a budget, after routing: b.parts holds the
// shared expert (first, when the layer has one) and the routed experts in first-come
// order with their users.
func (g *schedGlue) batchFFN(b *Batch, p *Pool, L *Layer, l int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s0 := 0
	if L.ShGate != nil {
		s0 = 1
	}
	all := b.parts
	n := len(all) - s0
	for e, pi := range b.byExp {
		if pi >= 0 {
			g.experts[pi-s0] = int32(e)
			g.tokens[pi-s0] = int32(len(all[pi].users))
		}
	}
	plan := g.c.Plan(l, g.experts[:n], g.tokens[:n])
	if g.onLayer != nil {
		g.onLayer(l, plan)
	}
	// Parts in compute order (a permutation: every part keeps its own users array).
	g.perm = append(g.perm[:0], all[:s0]...)
	for _, en := range plan {
		g.perm = append(g.perm, all[s0+en.Index])
	}
	copy(all, g.perm)
	for j, en := range plan {
		pt := &all[s0+j]
		pt.gate, pt.up, pt.down = g.bind(j, L, en)
	}
	// Each call computes its parts' outputs into b.part and sums every item's parts in
	// the item's own order; the last call sees all of them.
	if s0 > 0 {
		b.parts = all[:s0]
		b.runParts(p, L)
	}
	for i := 0; i < n; {
		j := g.c.Wait(i)
		b.parts = all[s0+i : s0+j]
		b.runParts(p, L)
		g.c.Computed(j)
		i = j
	}
	b.parts = all
	g.c.Finish()
}
