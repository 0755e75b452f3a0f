package engine

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mole-llm/mole/kernels"

	"github.com/mole-llm/mole/loader"
)

// Benchmarks on a model file named by MOLE_BENCH_MODEL (skipped without it), for
// profiling the token path (go test -cpuprofile): BenchmarkFileDecode runs State.Forward
// one token at a time (positions 0..127), BenchmarkFilePrefill one Batch step of MOLE_BENCH_PP tokens
// (default 64). MOLE_BENCH_THREADS sets the pool size (default 1), MOLE_BENCH_LOAD=copy
// reads the weights into anonymous memory (mole's --load copy).
func benchFileModel(b *testing.B) *Model {
	path := os.Getenv("MOLE_BENCH_MODEL")
	if path == "" {
		b.Skip("MOLE_BENCH_MODEL names no model")
	}
	mode := loader.LoadMmap
	if os.Getenv("MOLE_BENCH_LOAD") == "copy" {
		mode = loader.LoadCopy
	}
	lm, err := loader.OpenWith(path, loader.OpenOptions{Load: mode})
	m := loadOpened(b, lm, err)
	threads := 1
	if n, err := strconv.Atoi(os.Getenv("MOLE_BENCH_THREADS")); err == nil {
		threads = n
	}
	m.SetThreads(threads)
	return m
}

func BenchmarkFileDecode(b *testing.B) {
	m := benchFileModel(b)
	s := m.NewState(256)
	tok := func(i int) int32 { return int32((i*7919 + 11) % m.Config.Vocab) }
	for i := 0; i < 8; i++ {
		s.Forward(tok(i), i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := i % 128 // positions as in tg128
		s.Forward(tok(p), p)
	}
}

func BenchmarkFilePrefill(b *testing.B) {
	m := benchFileModel(b)
	n := 64
	if v, err := strconv.Atoi(strings.TrimSpace(os.Getenv("MOLE_BENCH_PP"))); err == nil {
		n = v
	}
	bt := m.NewBatch(n, n)
	s := m.NewState(n)
	items := make([]BatchItem, n)
	for i := range items {
		items[i] = BatchItem{State: s, Token: int32((i*7919 + 11) % m.Config.Vocab), Pos: i, Wants: i == n-1}
	}
	bt.Forward(items)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt.Forward(items)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkFileInterleaved compares models on a loaded machine: MOLE_BENCH_MODELS lists
// "path[@copy][@rows][@poll][@serialquant]" entries (@rows: mole's int8 types on the row
// path, not the GEMM; @poll: pool helpers poll for the next run before they park;
// @serialquant: a Batch quantises its activations on the caller alone) (comma-separated); each iteration runs one decode token (or, with
// MOLE_BENCH_PP=n, one n-token Batch step) of every model in turn, so load drifts hit all
// of them alike. It reports each model's ms per step and its time relative to the first.
func BenchmarkFileInterleaved(b *testing.B) {
	specs := strings.Split(os.Getenv("MOLE_BENCH_MODELS"), ",")
	if len(specs) < 2 {
		b.Skip("MOLE_BENCH_MODELS names fewer than two models")
	}
	threads := 1
	if n, err := strconv.Atoi(os.Getenv("MOLE_BENCH_THREADS")); err == nil {
		threads = n
	}
	pp, _ := strconv.Atoi(os.Getenv("MOLE_BENCH_PP"))
	type run struct {
		name string
		step func(i int)
		ns   int64
	}
	var runs []*run
	for _, sp := range specs {
		path, mode, rowPath := sp, loader.LoadMmap, false
		if p, ok := strings.CutSuffix(path, "@rows"); ok {
			path, rowPath = p, true
		}
		spin := defaultSpinNs
		if p, ok := strings.CutSuffix(path, "@poll"); ok {
			path, spin = p, pollNs
		}
		onCaller := false
		if p, ok := strings.CutSuffix(path, "@serialquant"); ok {
			path, onCaller = p, true
		}
		if p, ok := strings.CutSuffix(sp, "@copy"); ok {
			path, mode = p, loader.LoadCopy
		}
		lm, err := loader.OpenWith(path, loader.OpenOptions{Load: mode})
		m := loadOpened(b, lm, err)
		m.SetThreads(threads)
		m.pool.spinNs = spin
		tok := func(i int) int32 { return int32((i*7919 + 11) % m.Config.Vocab) }
		r := &run{name: sp}
		if pp > 0 {
			bt := m.NewBatch(pp, pp)
			bt.quant.onCaller = onCaller
			s := m.NewState(pp)
			items := make([]BatchItem, pp)
			for i := range items {
				items[i] = BatchItem{State: s, Token: tok(i), Pos: i, Wants: i == pp-1}
			}
			r.step = func(int) {
				moleRowPath = rowPath
				bt.Forward(items)
				moleRowPath = false
			}
		} else {
			s := m.NewState(256)
			r.step = func(i int) { p := i % 128; s.Forward(tok(p), p) }
		}
		r.step(0)
		runs = append(runs, r)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range runs {
			t0 := time.Now()
			r.step(i)
			r.ns += time.Since(t0).Nanoseconds()
		}
	}
	for k, r := range runs {
		b.ReportMetric(float64(r.ns)/float64(b.N)/1e6, fmt.Sprintf("ms/step-%d", k))
		b.ReportMetric(float64(r.ns)/float64(runs[0].ns), fmt.Sprintf("time-ratio-%d", k))
		b.Logf("%d: %s %.3f ms/step, %.3fx the time of %s", k, r.name, float64(r.ns)/float64(b.N)/1e6, float64(r.ns)/float64(runs[0].ns), runs[0].name)
	}
}

// BenchmarkFileDecodeParts splits decode time (MOLE_BENCH_MODEL, one thread) into the
// weight kernels and the rest, on a loaded machine, by interleaving in every iteration:
// a State.Forward token (positions 0..127, as tg128); a replay of the same products
// alone (every matrix one token reads, experts 0 and 1 standing in for the routed ones,
// through MulRowsQ on an input quantised once, no pool); and a streaming read of as many
// bytes as the kernels read (kernels.StreamRead over a buffer far larger than the caches).
// Reported: ms of each, the kernels' share of Forward, and the kernels' bandwidth as a
// fraction of the stream's (over the bytes they really read: codes, A8W4's (z, S2)
// pairs, row scales and row sums) and of the roofline's file bytes.
func BenchmarkFileDecodeParts(b *testing.B) {
	m := benchFileModel(b)
	m.SetThreads(1)
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
	mats = append(mats, m.Output)
	var memBytes, fileBytes int64
	maxRows, maxCols := 0, 0
	for _, mm := range mats {
		if !mm.Quantized() {
			b.Skipf("%s is not Quantized", mm.Name)
		}
		maxRows, maxCols = max(maxRows, mm.Rows), max(maxCols, mm.Cols)
		fileBytes += int64(len(mm.Data))
		memBytes += int64(len(mm.Data))
		if p := mm.mole; p != nil {
			memBytes += int64(len(p.groups) + 4*len(p.scale) + 4*len(p.rowSum))
			fileBytes += int64(4*len(p.scale) + len(p.groups))
		}
	}
	x := make([]float32, maxCols)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	xq := make([]byte, m.actBuf(maxCols, 1))
	out := make([]float32, maxRows)
	// Per dtype: the kernels' time and the bytes they read.
	byType := map[string]*struct {
		ns    time.Duration
		bytes int64
	}{}
	for _, mm := range mats {
		k := mm.DType.String()
		if byType[k] == nil {
			byType[k] = &struct {
				ns    time.Duration
				bytes int64
			}{}
		}
		byType[k].bytes += int64(len(mm.Data))
		if p := mm.mole; p != nil {
			byType[k].bytes += int64(len(p.groups) + 4*len(p.scale) + 4*len(p.rowSum))
		}
	}
	replay := func() {
		for _, mm := range mats {
			t0 := time.Now()
			n := m.actBytes(mm.Cols)
			m.quantAct(xq[:n], x[:mm.Cols])
			mm.MulRowsQ(out[:mm.Rows], 0, mm.Rows, xq[:n])
			byType[mm.DType.String()].ns += time.Since(t0)
		}
	}
	buf := make([]byte, 1<<30)
	for i := range buf {
		buf[i] = byte(i)
	}
	stream := func() {
		for left, o := memBytes, int64(0); left > 0; {
			n := min(left, int64(len(buf))-o)
			kernels.StreamRead(buf[o : o+n])
			left -= n
			o = (o + n) % int64(len(buf))
		}
	}
	s := m.NewState(128)
	tok := func(i int) int32 { return int32((i*7919 + 11) % c.Vocab) }
	var tf, tk, ts time.Duration
	replay()
	stream()
	for _, v := range byType {
		v.ns = 0
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		s.Forward(tok(i), i%128)
		t1 := time.Now()
		replay()
		t2 := time.Now()
		stream()
		t3 := time.Now()
		tf, tk, ts = tf+t1.Sub(t0), tk+t2.Sub(t1), ts+t3.Sub(t2)
	}
	n := float64(b.N)
	b.ReportMetric(tf.Seconds()*1e3/n, "forward-ms")
	b.ReportMetric(tk.Seconds()*1e3/n, "kernels-ms")
	b.ReportMetric(ts.Seconds()*1e3/n, "stream-ms")
	b.ReportMetric(tk.Seconds()/tf.Seconds(), "kernel-share")
	b.ReportMetric(ts.Seconds()/tk.Seconds(), "kernel/stream-bw")
	b.ReportMetric(float64(fileBytes)/float64(memBytes)*ts.Seconds()/tf.Seconds(), "forward-roofline")
	b.Logf("per token: %.1f MB read by the kernels (%.1f MB in the file's terms); forward %.2f ms, kernels alone %.2f ms (%.0f%%), stream of the same bytes %.2f ms: kernels at %.0f%% of the stream, forward at %.0f%% of the roofline",
		float64(memBytes)/1e6, float64(fileBytes)/1e6, tf.Seconds()*1e3/n, tk.Seconds()*1e3/n, 100*tk.Seconds()/tf.Seconds(), ts.Seconds()*1e3/n,
		100*ts.Seconds()/tk.Seconds(), 100*float64(fileBytes)/float64(memBytes)*ts.Seconds()/tf.Seconds())
	streamBW := float64(memBytes) * n / ts.Seconds()
	for k, v := range byType {
		bw := float64(v.bytes) * n / v.ns.Seconds()
		b.Logf("%s: %.1f MB per token in %.2f ms: %.1f GB/s, %.0f%% of the stream's %.1f GB/s", k, float64(v.bytes)/1e6, v.ns.Seconds()*1e3/n, bw/1e9, 100*bw/streamBW, streamBW/1e9)
	}
}

// BenchmarkQuantActI8: the per-token int8 activation encoding of 1024 and 2816 values
// (bench-moe's model and expert widths), the work a decode token repeats ~70K values' worth.
func BenchmarkQuantActI8(b *testing.B) {
	for _, n := range []int{1024, 2816} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(math.Sin(float64(i) * 0.37))
			}
			dst := make([]byte, actI8Bytes(n))
			b.SetBytes(int64(4 * n))
			for i := 0; i < b.N; i++ {
				quantizeActI8(dst, x)
			}
		})
	}
}
