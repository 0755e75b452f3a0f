package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/sched"
)

// HEBFOptions configure RunHEBF: decoding speed of an MWQ model under memory budgets
// (mole bench --mem-budget; docs/memory-budget.md), per expert-cache policy.
type HEBFOptions struct {
	Model string
	// Fractions are budgets as fractions of the model's expert bytes (the cache's share; the
	// always-resident part comes on top). Budgets, when set, are absolute bytes instead.
	Fractions []float64
	Budgets   []int64
	Policies  []sched.Policy
	Backend   sched.Backend
	Profile   *sched.Profile // mole profile's measurements, for the widths (nil: none)
	// Warm decode steps fill the cache (untimed; the throughput test takes a quarter of
	// them, at least 2); Gen steps are timed. Parallel sequences decode together in the
	// throughput test (0: no throughput test).
	Warm, Gen, Parallel int
	// Resident adds a row without a budget (the whole file mapped, experts at their widest).
	Resident bool
	Open     func(path string) (*engine.Model, func(), error)
	Log      io.Writer
}

// HEBFRow is one policy at one budget.
type HEBFRow struct {
	Policy       string  `json:"policy"` // "resident" for the row without a budget
	Fraction     float64 `json:"fraction"`
	Budget       int64   `json:"budget_bytes"`
	ExpertBudget int64   `json:"expert_cache_bytes"`
	TG           float64 `json:"tg_tokens_per_s"`
	Par          float64 `json:"parallel_tokens_per_s"`
	HitRate      float64 `json:"plane_hit_rate"`     // over both tests
	ReadPerToken float64 `json:"read_mib_per_token"` // tg test
	IOWaitShare  float64 `json:"io_wait_share"`      // tg test: share of the time spent waiting for planes
	Mix          string  `json:"bit_mix"`            // expert runs by width, tg test
	PeakRSS      int64   `json:"peak_rss_bytes"`
}

// HEBFReport is a RunHEBF result.
type HEBFReport struct {
	Model       string    `json:"model"`
	Env         Env       `json:"env"`
	Threads     int       `json:"threads"`
	Resident    int64     `json:"resident_bytes"`
	ExpertBytes int64     `json:"expert_bytes"`
	Warm        int       `json:"warm"`
	Gen         int       `json:"gen"`
	Parallel    int       `json:"parallel"`
	Backend     string    `json:"backend"`
	Profile     bool      `json:"profile"` // widths used the model's profile
	DirectIO    bool      `json:"direct_io"`
	Rows        []HEBFRow `json:"rows"`
}

// RunHEBF measures, for every budget and policy, tg (one sequence decoding: tokens/s over
// Gen steps after Warm steps) and the aggregate tokens/s of Parallel sequences decoding in
// one Batch, with the cache of each configuration built afresh (cold), and the peak RSS of
// the configuration. Token streams are fixed synthetic sequences, so every policy sees the
// same routing.
func RunHEBF(ctx context.Context, o HEBFOptions) (*HEBFReport, error) {
	if o.Open == nil {
		return nil, errors.New("bench: HEBFOptions.Open is nil")
	}
	if o.Gen <= 0 {
		return nil, errors.New("bench: -n must be positive for the memory-budget benchmark")
	}
	m, done, err := o.Open(o.Model)
	if err != nil {
		return nil, err
	}
	defer done()
	lay, err := m.ExpertLayout()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Model, err)
	}
	rep := &HEBFReport{Model: o.Model, Env: CurrentEnv(), Threads: m.Threads(), Resident: lay.Resident,
		ExpertBytes: lay.ExpertBytes(), Warm: o.Warm, Gen: o.Gen, Parallel: o.Parallel, Backend: o.Backend.String(), Profile: o.Profile != nil}
	type point struct {
		frac   float64
		budget int64
	}
	var points []point
	for _, f := range o.Fractions {
		points = append(points, point{f, lay.Resident + int64(f*float64(rep.ExpertBytes))})
	}
	for _, b := range o.Budgets {
		points = append(points, point{float64(b-lay.Resident) / float64(rep.ExpertBytes), b})
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format, args...)
		}
	}
	ctxLen := o.Warm + o.Gen + 2
	if o.Resident {
		ResetPeakRSS()
		row := HEBFRow{Policy: "resident"}
		row.TG, _ = hebfTG(m, o, ctxLen)
		if o.Parallel > 0 {
			row.Par = hebfPar(m, o, ctxLen)
		}
		row.PeakRSS = PeakRSS()
		rep.Rows = append(rep.Rows, row)
		logf("resident: tg %.2f t/s, %d parallel %.2f t/s, peak RSS %s\n", row.TG, o.Parallel, row.Par, sched.FormatSize(row.PeakRSS))
	}
	for _, pt := range points {
		for _, pol := range o.Policies {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			opts := sched.Options{Budget: pt.budget, Policy: pol, Backend: o.Backend, Profile: o.Profile}
			c, err := m.SetMemBudget(opts)
			if err != nil {
				logf("%s at %.0f%% (%s): %v\n", pol, 100*pt.frac, sched.FormatSize(pt.budget), err)
				continue
			}
			// After SetMemBudget, which hands back the mapping's expert pages an earlier
			// run without a budget faulted in.
			ResetPeakRSS()
			rep.DirectIO = c.Stats().DirectIO
			row := HEBFRow{Policy: pol.String(), Fraction: pt.frac, Budget: pt.budget, ExpertBudget: c.ExpertBudget()}
			var tgStats sched.Stats
			row.TG, tgStats = hebfTG(m, o, ctxLen)
			var loads, hits int64 = tgStats.Misses, tgStats.Hits
			if tgStats.Steps > 0 {
				nl := int64(m.Config.NLayer)
				tok := float64(tgStats.Steps / nl)
				row.ReadPerToken = float64(tgStats.BytesLoaded) / (1 << 20) / tok
			}
			row.Mix = mixString(tgStats.Mix)
			if o.Parallel > 0 {
				// A fresh cache for the throughput test too.
				if c, err = m.SetMemBudget(opts); err != nil {
					return rep, err
				}
				row.Par = hebfPar(m, o, ctxLen)
				st := c.Stats()
				loads += st.Misses
				hits += st.Hits
			}
			if hits+loads > 0 {
				row.HitRate = float64(hits) / float64(hits+loads)
			}
			row.IOWaitShare = tgStats.IOWait.Seconds() / (float64(o.Gen) / row.TG)
			m.ClearMemBudget()
			row.PeakRSS = PeakRSS()
			rep.Rows = append(rep.Rows, row)
			logf("%-5s %5.1f%% budget %s: tg %.2f t/s (%.1f MiB read/token, I/O wait %.0f%%, %s), %d parallel %.2f t/s, hits %.0f%%, peak RSS %s\n",
				pol, 100*pt.frac, sched.FormatSize(pt.budget), row.TG, row.ReadPerToken, 100*row.IOWaitShare, row.Mix, o.Parallel, row.Par, 100*row.HitRate, sched.FormatSize(row.PeakRSS))
		}
	}
	return rep, nil
}

// hebfToken is the synthetic token of sequence seq at position pos.
func hebfToken(vocab, seq, pos int) int32 {
	return int32((pos*7919 + seq*104729 + 13) % vocab)
}

// hebfTG decodes Warm+Gen tokens of one sequence and returns the tokens/s of the last Gen
// and the cache's counters over them.
func hebfTG(m *engine.Model, o HEBFOptions, ctxLen int) (float64, sched.Stats) {
	s := m.NewState(ctxLen)
	v := m.Config.Vocab
	for pos := 0; pos < o.Warm; pos++ {
		s.Forward(hebfToken(v, 0, pos), pos)
	}
	var before sched.Stats
	c := m.MemBudget()
	if c != nil {
		before = c.Stats()
	}
	t0 := time.Now()
	for pos := o.Warm; pos < o.Warm+o.Gen; pos++ {
		s.Forward(hebfToken(v, 0, pos), pos)
	}
	d := time.Since(t0)
	var st sched.Stats
	if c != nil {
		st = statsDiff(c.Stats(), before)
	}
	return float64(o.Gen) / d.Seconds(), st
}

// hebfPar decodes Parallel sequences together, one token each per Batch step, and returns
// the aggregate tokens/s of the last Gen steps.
func hebfPar(m *engine.Model, o HEBFOptions, ctxLen int) float64 {
	n := o.Parallel
	b := m.NewBatch(n, ctxLen)
	states := make([]*engine.State, n)
	for i := range states {
		states[i] = m.NewState(ctxLen)
	}
	items := make([]engine.BatchItem, n)
	v := m.Config.Vocab
	step := func(pos int) {
		for i := range items {
			items[i] = engine.BatchItem{State: states[i], Token: hebfToken(v, i+1, pos), Pos: pos, Wants: true}
		}
		b.Forward(items)
	}
	// A step of several sequences touches most experts of a layer, so a few steps fill
	// the cache that one sequence needs Warm steps for.
	warm := max(2, o.Warm/4)
	for pos := 0; pos < warm; pos++ {
		step(pos)
	}
	t0 := time.Now()
	for pos := warm; pos < warm+o.Gen; pos++ {
		step(pos)
	}
	return float64(n*o.Gen) / time.Since(t0).Seconds()
}

func statsDiff(a, b sched.Stats) sched.Stats {
	a.Hits -= b.Hits
	a.Misses -= b.Misses
	a.BytesLoaded -= b.BytesLoaded
	a.Evictions -= b.Evictions
	a.IOWait -= b.IOWait
	a.ReadTime -= b.ReadTime
	a.Steps -= b.Steps
	for i := range a.Mix {
		a.Mix[i] -= b.Mix[i]
	}
	return a
}

func mixString(mix [17]int64) string {
	var parts []string
	var total int64
	for _, n := range mix {
		total += n
	}
	for b, n := range mix {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%db %.0f%%", b, 100*float64(n)/float64(total)))
		}
	}
	return strings.Join(parts, " ")
}

// WriteMarkdown writes the rows as a table, with the HEBF/LRU ratios per budget.
func (r *HEBFReport) WriteMarkdown(w io.Writer) error {
	io := r.Backend
	if r.Backend == "pread" {
		if r.DirectIO {
			io += " (O_DIRECT)"
		} else {
			io += " (fadvise DONTNEED)"
		}
	}
	fmt.Fprintf(w, "CPU: %s (%d CPUs, %s/%s), kernels %s, %s, commit %s; %d threads; model %s: always resident %s, expert planes %s; expert I/O %s (widths with profile: %v); tg: %d tokens timed after %d warm-up; parallel: %d sequences, %d steps timed after %d\n\n",
		r.Env.CPU, r.Env.Cores, r.Env.OS, r.Env.Arch, r.Env.ISA, r.Env.GoVersion, r.Env.Commit, r.Threads, r.Model,
		sched.FormatSize(r.Resident), sched.FormatSize(r.ExpertBytes), io, r.Profile, r.Gen, r.Warm, r.Parallel, r.Gen, max(2, r.Warm/4))
	fmt.Fprintf(w, "| budget (of expert bytes) | budget | policy | tg t/s | %d parallel t/s | plane hits | MiB read/token (tg) | I/O wait (tg) | widths (tg) | peak RSS | RSS / (budget) |\n", r.Parallel)
	fmt.Fprintf(w, "|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, x := range r.Rows {
		if x.Policy == "resident" {
			fmt.Fprintf(w, "| no budget | — | resident | %.2f | %.2f | | | | | %s | |\n", x.TG, x.Par, sched.FormatSize(x.PeakRSS))
			continue
		}
		fmt.Fprintf(w, "| %.0f%% | %s | %s | %.2f | %.2f | %.0f%% | %.1f | %.0f%% | %s | %s | %.2f |\n",
			100*x.Fraction, sched.FormatSize(x.Budget), x.Policy, x.TG, x.Par, 100*x.HitRate, x.ReadPerToken, 100*x.IOWaitShare, x.Mix,
			sched.FormatSize(x.PeakRSS), float64(x.PeakRSS)/float64(x.Budget))
	}
	fmt.Fprintln(w)
	for _, x := range r.Rows {
		if x.Policy != sched.HEBF.String() {
			continue
		}
		for _, y := range r.Rows {
			if y.Policy == sched.LRU.String() && y.Budget == x.Budget && y.TG > 0 {
				par := ""
				if y.Par > 0 {
					par = fmt.Sprintf(", %d parallel %.2fx", r.Parallel, x.Par/y.Par)
				}
				fmt.Fprintf(w, "HEBF / LRU at %.0f%%: tg %.2fx%s\n", 100*x.Fraction, x.TG/y.TG, par)
			}
		}
	}
	return nil
}
