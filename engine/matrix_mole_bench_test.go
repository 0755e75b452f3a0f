package engine

import (
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
)

// BenchmarkFileA8W4Tables compares, in one process and alternately, the A8W4 products a
// decode token runs (every A8W4 matrix of the model's token path, experts 0..k-1 standing
// in for the routed ones) through the table-free kernel the engine uses
// (kernels.GemvA8W4G on the stored pairs) and through the table kernel on 16-byte tables
// expanded here as the engine built them before (kernels.GemvA8W4): same inputs, same
// matrices, the fastest pass of each. Reported: ms per pass, tables/G time ratio, and the
// bytes each streams. Run with MOLE_BENCH_MODEL=<an a8w4 model>.
func BenchmarkFileA8W4Tables(b *testing.B) {
	m := benchFileModel(b)
	c := &m.Config
	var mats []*Matrix
	for l := range m.Layers {
		L := &m.Layers[l]
		mats = append(mats, L.Wq, L.Wk, L.Wv, L.Wo)
		if L.Router != nil {
			for e := 0; e < c.NExpertUsed; e++ {
				mats = append(mats, L.ExpGate[e], L.ExpUp[e], L.ExpDown[e])
			}
			if L.ShGate != nil {
				mats = append(mats, L.ShGate, L.ShUp, L.ShDown)
			}
		} else {
			mats = append(mats, L.Gate, L.Up, L.Down)
		}
	}
	var a4 []*Matrix
	tables := map[*Matrix][]int8{}
	var gBytes, tBytes int64
	maxRows, maxCols := 0, 0
	for _, mm := range mats {
		if mm == nil || mm.DType != loader.MoleA8W4 || mm.mole == nil {
			continue
		}
		p := mm.mole
		a4 = append(a4, mm)
		t := make([]int8, len(p.groups)*8)
		kernels.A8W4Tables(t, p.groups)
		tables[mm] = t
		gBytes += int64(len(p.codes) + len(p.groups))
		tBytes += int64(len(p.codes) + len(t))
		maxRows, maxCols = max(maxRows, mm.Rows), max(maxCols, p.pc)
	}
	if len(a4) == 0 {
		b.Skip("no MOLE_A8W4 matrix on the token path")
	}
	x := make([]float32, maxCols)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	xq := make([]byte, m.actBuf(maxCols, 1))
	out := make([]float32, maxRows)
	pass := func(useTables bool) {
		for _, mm := range a4 {
			p := mm.mole
			n := actI8Bytes(mm.Cols)
			quantizeActI8(xq[:n], x[:mm.Cols])
			x8, xs, _ := actI8View(xq[:n], p.pc)
			if useTables {
				kernels.GemvA8W4(out[:mm.Rows], p.codes, tables[mm], p.scale, p.rowSum, x8, xs)
			} else {
				kernels.GemvA8W4G(out[:mm.Rows], p.codes, p.groups, p.scale, p.rowSum, x8, xs)
			}
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var tt, tg time.Duration
	timeOne := func(useTables bool, best *time.Duration) {
		t0 := time.Now()
		pass(useTables)
		if d := time.Since(t0); *best == 0 || d < *best {
			*best = d
		}
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			timeOne(true, &tt)
			timeOne(false, &tg)
		} else {
			timeOne(false, &tg)
			timeOne(true, &tt)
		}
		i++
	}
	b.ReportMetric(float64(tt.Microseconds())/1e3, "tables_ms")
	b.ReportMetric(float64(tg.Microseconds())/1e3, "G_ms")
	b.ReportMetric(float64(tt)/float64(tg), "tables/G")
	b.ReportMetric(float64(tBytes)/1e6, "tables_MB")
	b.ReportMetric(float64(gBytes)/1e6, "G_MB")
}
