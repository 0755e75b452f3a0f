package engine

import (
	"errors"
	"math/rand/v2"
	"time"
)

// ExpertComputeTime measures T_comp (D²MoE's profile): the time to compute one routed MWQ
// expert (gate and up, silu, down, with the input encodings) for one token at each width
// from the base to the widest, on the model's pool, as Forward computes an expert. The
// result is indexed by width (0 for widths not stored). The expert's pages are touched
// before timing, so the figure is compute, not I/O.
func (m *Model) ExpertComputeTime(reps int) ([]time.Duration, error) {
	b1, K, ok := m.MWQBits()
	if !ok {
		return nil, errors.New("the model has no MWQ experts")
	}
	L := &m.Layers[0]
	mats := []*Matrix{L.ExpGate[0], L.ExpUp[0], L.ExpDown[0]}
	prev := make([]int, len(mats))
	for i, mm := range mats {
		prev[i] = b1 + len(mm.mwq.use)
	}
	defer func() {
		for i, mm := range mats {
			mm.mwq.setBits(prev[i])
		}
	}()
	s := m.NewState(1)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range s.xn {
		s.xn[i] = float32(r.NormFloat64())
	}
	p := m.pool
	f := &s.ff
	run := func() {
		f.reset(s.xn, s.hb, s.tmp)
		f.add(mats[0], mats[1], mats[2], 1)
		cols := m.Config.NEmbd
		m.quantAct(s.xq[:m.actBytes(cols)], s.xn)
		f.xq = s.xq
		p.RunChunk(f.rows, chunkFor(p, f.rows, cols), s.ffUpRun)
		e := &f.ex[0]
		m.quantAct(s.hq[e.qoff:e.qoff+m.actBytes(e.n)], f.h[e.off:e.off+e.n])
		f.hq = s.hq
		p.RunChunk(cols, chunkFor(p, cols, f.rows), s.ffDownRun)
	}
	out := make([]time.Duration, K+1)
	for b := b1; b <= K; b++ {
		for _, mm := range mats {
			mm.mwq.setBits(b)
		}
		run() // warm: pages in, caches filled
		t0 := time.Now()
		for range max(reps, 1) {
			run()
		}
		out[b] = time.Since(t0) / time.Duration(max(reps, 1))
	}
	return out, nil
}
