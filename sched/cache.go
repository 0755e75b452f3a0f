package sched

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Policy decides the order of loads and what to evict.
type Policy uint8

const (
	// HEBF loads (and computes) the hottest expert first, each expert's planes in
	// increasing bit order; eviction follows D²MoE's Algorithm 2 (see Cache).
	HEBF Policy = iota
	// FirstCome loads in the order the router first chose the experts in the step, with
	// HEBF's widths and eviction: it isolates the effect of the load order.
	FirstCome
	// LRU caches whole experts at the widest stored width (4 bits for mwq24), loads them on
	// demand in first-come order and evicts the least recently used expert: the
	// conventional expert cache, the baseline of the benchmark.
	LRU
)

// Policies lists the policies by their names (ParsePolicy, the benchmark).
var Policies = []Policy{HEBF, FirstCome, LRU}

func (p Policy) String() string {
	switch p {
	case HEBF:
		return "hebf"
	case FirstCome:
		return "fcfs"
	case LRU:
		return "lru4"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy maps "hebf", "fcfs" or "lru4" to a Policy.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range Policies {
		if strings.EqualFold(strings.TrimSpace(s), p.String()) {
			return p, nil
		}
	}
	return HEBF, fmt.Errorf("unknown policy %q (want hebf, fcfs or lru4)", s)
}

// Backend is how a plane gets from the file into memory.
type Backend uint8

const (
	// Pread reads planes with pread into anonymous memory the cache owns, with O_DIRECT
	// when the file system allows it, else buffered with posix_fadvise(DONTNEED) after
	// each read, so that the page cache does not hide the cost of the next load.
	Pread Backend = iota
	// Mmap leaves planes in the model's mapping: a load is madvise(WILLNEED) of the
	// plane's pages, an eviction madvise(DONTNEED) plus posix_fadvise(DONTNEED). The
	// comparison D²MoE suggests for CPUs (docs/algorithms.md §3); same accounting.
	Mmap
)

func (b Backend) String() string {
	if b == Mmap {
		return "mmap"
	}
	return "pread"
}

// ParseBackend maps "pread" (or "") or "mmap" to a Backend (--cache-io).
func ParseBackend(s string) (Backend, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "pread":
		return Pread, nil
	case "mmap":
		return Mmap, nil
	}
	return Pread, fmt.Errorf("--cache-io %q: want pread or mmap", s)
}

// Unit is one plane of one expert: its gate, up and down bytes, three ranges of the file.
type Unit struct {
	Off  [3]int64
	Len  [3]int
	View [3][]byte // the same bytes in the model's mapping (Mmap backend; fallback on I/O errors)
}

// Layout describes where a model's expert planes lie in its file.
type Layout struct {
	Path              string
	NLayer, NExpert   int
	TopK              int // experts per token
	BaseBits, MaxBits int
	// Units[l][e][k] is plane k of expert e of layer l: k = 0 the base, k = i plane
	// BaseBits+i. Every layer and expert has MaxBits-BaseBits+1 planes, all units of the
	// same k the same length.
	Units [][][]Unit
	// Resident is the bytes of everything that is not a routed expert (attention,
	// routers, norms, embeddings, head, shared experts): always resident.
	Resident int64
}

// Levels is the number of planes per expert (base included).
func (l *Layout) Levels() int { return l.MaxBits - l.BaseBits + 1 }

// ExpertBytes is the file bytes of every expert plane of every layer.
func (l *Layout) ExpertBytes() int64 {
	var n int64
	for _, le := range l.Units {
		for _, ee := range le {
			for _, u := range ee {
				n += int64(u.Len[0] + u.Len[1] + u.Len[2])
			}
		}
	}
	return n
}

// Options configure a Cache.
type Options struct {
	Budget  int64 // bytes for everything: the always-resident part plus the expert cache
	Policy  Policy
	Bits    int // > 0: every expert at this width (--expert-bits); 0: from hotness and budget
	Backend Backend
	Decay   float64 // per-step decay of an expert's running token count (0: 0.9)
	// Profile (mole profile: T_io per plane, T_comp per width), when known, lets hot
	// experts load planes above the width the budget gives everyone only while the layer's
	// loads stay hidden behind its compute. Without it they take such planes only when the
	// planes are resident already or the expert has several tokens in the step.
	Profile *Profile
	// OnLoad, when set, is called by the I/O worker after every load with the bytes the
	// cache's memory holds at that moment (tests check the budget with it).
	OnLoad func(held int64)
}

// Entry is one active expert of a layer's plan, in compute order.
type Entry struct {
	Expert int32
	Tokens int32 // tokens routed to it in this step
	Bits   int   // width it runs at
	Index  int   // its position in the slices given to Plan
}

// Stats are cumulative counters of a Cache (Cache.Stats).
type Stats struct {
	Hits, Misses int64 // plane units found resident / loaded
	BytesLoaded  int64 // file bytes read into the cache (plane bytes, not alignment slack)
	Evictions    int64 // plane units evicted
	IOWait       time.Duration
	ReadTime     time.Duration // time the worker spent reading
	Mix          [17]int64     // Mix[b]: expert runs at b bits
	Held, Peak   int64         // bytes the cache's memory holds now / at most so far
	Steps        int64         // layer plans
	DirectIO     bool          // reads use O_DIRECT
	Err          error         // the first read error (the plane was then taken from the mapping)
}

// class 0 holds bases, class 1 residual planes.
const nClass = 2

func classOf(k int) int { return min(k, 1) }

// align is the O_DIRECT alignment of buffers, offsets and lengths (the page size covers
// 512- and 4096-byte logical blocks).
const align = 4096

func roundUp(n, a int64) int64 { return (n + a - 1) / a * a }

// Cache is a budgeted cache of expert planes with its I/O worker. Plan, Wait, Computed,
// View and Finish are called by one goroutine (the engine's forward pass); the worker
// runs beside it.
type Cache struct {
	lay    *Layout
	o      Options
	levels int
	nl, ne int
	budget int64 // bytes for expert planes: Budget - Resident

	slotSize [nClass]int64
	partOff  [nClass][3]int64 // offset of each part's region in a slot

	// Residency, indexed by unit u = (l*ne+e)*levels+k.
	slot []int32 // slot holding u, -1 when not resident
	pin  []int32 // plan entry pinning u (current layer), -1 when free
	hist []float64
	last []int64 // LRU: step an expert last ran
	high []int32 // resident residual planes per layer
	step int64

	inUse   int64 // bytes of allocated slots, at plan time
	nEvict  int64
	free    [nClass][]int32
	nextNew [nClass]int32
	nSlots  [nClass]int32

	// The current plan.
	layer  int
	plan   []Entry
	order  []int // scratch: hotness order
	pinned []int32
	views  [][][3][]byte // views[j][k]: plan entry j's plane k, fixed at plan time
	ops    []op

	// Shared with the worker.
	mu        sync.Mutex
	cond      *sync.Cond
	ready     []bool
	computed  int
	jobsSent  int64
	jobsDone  int64
	jobs      chan []op
	closed    bool
	stats     Stats
	held      atomic.Int64
	peak      atomic.Int64
	loadBytes atomic.Int64

	io *ioWorker

	tIO   []float64 // profiled load time of a plane per level (ns), nil without a profile
	tComp []float64 // profiled compute time of one expert for one token per width (ns)
}

type opKind uint8

const (
	opLoad opKind = iota
	opRelease
)

type op struct {
	kind  opKind
	class uint8
	slot  int32
	unit  int32
	wait  int32 // plan entry that must be computed first, -1 for none
	entry int32 // plan entry this load completes, -1 for none
}

// New checks the budget against the layout and starts the cache's I/O worker.
func New(lay *Layout, o Options) (*Cache, error) {
	if lay.NLayer <= 0 || lay.NExpert <= 0 || lay.TopK <= 0 || lay.MaxBits < lay.BaseBits || lay.BaseBits <= 0 {
		return nil, fmt.Errorf("sched: layout of %d layers, %d experts (top %d), widths %d..%d: nothing to schedule", lay.NLayer, lay.NExpert, lay.TopK, lay.BaseBits, lay.MaxBits)
	}
	if o.Bits != 0 && (o.Bits < lay.BaseBits || o.Bits > lay.MaxBits) {
		return nil, fmt.Errorf("sched: experts can run at %d to %d bits, not %d", lay.BaseBits, lay.MaxBits, o.Bits)
	}
	if o.Decay <= 0 || o.Decay >= 1 {
		o.Decay = 0.9
	}
	c := &Cache{lay: lay, o: o, levels: lay.Levels(), nl: lay.NLayer, ne: lay.NExpert}
	for cl := 0; cl < nClass; cl++ {
		k := min(cl, c.levels-1)
		u := &lay.Units[0][0][k]
		var off int64
		for p := 0; p < 3; p++ {
			c.partOff[cl][p] = off
			off += roundUp(int64(u.Len[p]), align) + align
		}
		c.slotSize[cl] = off
	}
	c.budget = o.Budget - lay.Resident
	minBits := lay.BaseBits
	what := "base width"
	if o.Policy == LRU {
		minBits = lay.MaxBits
		what = "the LRU policy's full width"
	}
	minSet := int64(lay.TopK) * c.sizeAt(minBits)
	if o.Budget < lay.Resident {
		return nil, fmt.Errorf("memory budget %s is below the always-resident part of the model, %s (attention, routers, norms, embeddings, output head, shared experts)", FormatSize(o.Budget), FormatSize(lay.Resident))
	}
	if c.budget < minSet {
		return nil, fmt.Errorf("memory budget %s leaves %s for experts after the always-resident %s; one layer's %d experts at %s (%d bits) need %s: the budget must be at least %s",
			FormatSize(o.Budget), FormatSize(c.budget), FormatSize(lay.Resident), lay.TopK, what, minBits, FormatSize(minSet), FormatSize(lay.Resident+minSet))
	}
	nu := c.nl * c.ne * c.levels
	c.slot = make([]int32, nu)
	c.pin = make([]int32, nu)
	for i := range c.slot {
		c.slot[i], c.pin[i] = -1, -1
	}
	c.hist = make([]float64, c.nl*c.ne)
	c.last = make([]int64, c.nl*c.ne)
	c.high = make([]int32, c.nl)
	c.plan = make([]Entry, 0, c.ne)
	c.order = make([]int, 0, c.ne)
	c.pinned = make([]int32, 0, c.ne*c.levels)
	c.ready = make([]bool, c.ne)
	c.views = make([][][3][]byte, c.ne)
	for j := range c.views {
		c.views[j] = make([][3][]byte, c.levels)
	}
	c.ops = make([]op, 0, 4*c.ne*c.levels)
	c.cond = sync.NewCond(&c.mu)
	c.jobs = make(chan []op, 1)
	for cl := 0; cl < nClass; cl++ {
		units := int64(c.nl * c.ne)
		if cl == 1 {
			units *= int64(c.levels - 1)
		}
		c.nSlots[cl] = int32(min(units, c.budget/c.slotSize[cl]))
		c.free[cl] = make([]int32, 0, c.nSlots[cl])
	}
	if p := o.Profile; p != nil {
		tio := make([]float64, c.levels)
		tc := make([]float64, lay.MaxBits+1)
		ok := true
		for k := range tio {
			tio[k] = float64(p.IOTime(o.Backend, min(k, 1)))
			ok = ok && tio[k] > 0
		}
		for _, q := range p.Comp {
			if q.Bits >= 0 && q.Bits < len(tc) {
				tc[q.Bits] = q.Micros * 1e3
			}
		}
		for b := lay.BaseBits; b <= lay.MaxBits; b++ {
			ok = ok && tc[b] > 0
		}
		if ok {
			c.tIO, c.tComp = tio, tc
		}
	}
	w, err := newIOWorker(c)
	if err != nil {
		return nil, err
	}
	c.io = w
	c.stats.DirectIO = w.direct
	go c.work()
	return c, nil
}

// sizeAt is the bytes one expert occupies in the cache at width bits.
func (c *Cache) sizeAt(bits int) int64 {
	return c.slotSize[0] + int64(bits-c.lay.BaseBits)*c.slotSize[1]
}

// ExpertBudget is the bytes the cache may hold (the budget less the resident part).
func (c *Cache) ExpertBudget() int64 { return c.budget }

// Options returns the cache's options.
func (c *Cache) Options() Options { return c.o }

// Layout returns the layout the cache was built for.
func (c *Cache) Layout() *Layout { return c.lay }

func (c *Cache) unit(l, e, k int) int32 { return int32((l*c.ne+e)*c.levels + k) }

// Plan starts layer's step: experts are the distinct experts the router chose (in the
// order they were first chosen) and tokens[i] how many tokens chose experts[i]. It returns
// the entries in compute order with their widths, and hands the loads to the I/O worker.
// The slice is valid until the next Plan.
func (c *Cache) Plan(layer int, experts, tokens []int32) []Entry {
	c.mu.Lock()
	for c.jobsDone < c.jobsSent {
		c.cond.Wait()
	}
	c.mu.Unlock()
	c.step++
	c.layer = layer
	n := len(experts)
	plan := c.plan[:n]
	c.plan = plan
	hist := c.hist[layer*c.ne : (layer+1)*c.ne]
	for i := range plan {
		plan[i] = Entry{Expert: experts[i], Tokens: tokens[i], Index: i}
	}
	// Hotness order: tokens in this step, then the decayed running count, then index.
	hotter := func(a, b *Entry) bool {
		if a.Tokens != b.Tokens {
			return a.Tokens > b.Tokens
		}
		if ha, hb := hist[a.Expert], hist[b.Expert]; ha != hb {
			return ha > hb
		}
		return a.Expert < b.Expert
	}
	if c.o.Policy == HEBF {
		for i := 1; i < n; i++ {
			for j := i; j > 0 && hotter(&plan[j], &plan[j-1]); j-- {
				plan[j], plan[j-1] = plan[j-1], plan[j]
			}
		}
	}
	c.chooseBits(plan, hist, hotter)
	for i := range plan {
		e := plan[i].Expert
		hist[e] += float64(plan[i].Tokens)
		c.last[layer*c.ne+int(e)] = c.step
	}
	for e := range hist {
		hist[e] *= c.o.Decay
	}

	ops := c.ops[:0]
	var hits, misses int64
	for j := range plan {
		e := int(plan[j].Expert)
		last := -1
		for k := 0; k <= plan[j].Bits-c.lay.BaseBits; k++ {
			u := c.unit(layer, e, k)
			c.pin[u] = int32(j)
			c.pinned = append(c.pinned, u)
			if c.slot[u] >= 0 {
				hits++
			} else {
				misses++
				ops = c.alloc(ops, u, k, j)
				last = len(ops) - 1
			}
			c.setViews(j, layer, e, k, u)
		}
		if last >= 0 {
			ops[last].entry = int32(j)
		}
	}
	c.ops = ops
	c.mu.Lock()
	for j := range plan {
		b := plan[j].Bits
		c.stats.Mix[b]++
	}
	c.stats.Hits += hits
	c.stats.Evictions = c.nEvict
	c.stats.Misses += misses
	c.stats.Steps++
	c.computed = 0
	// Entries without loads are ready now; the others when their last load is done.
	ready := c.ready[:n]
	for j := range ready {
		ready[j] = true
	}
	for i := range ops {
		if ops[i].entry >= 0 {
			ready[ops[i].entry] = false
		}
	}
	if len(ops) > 0 {
		c.jobsSent++
	}
	c.mu.Unlock()
	if len(ops) > 0 {
		c.jobs <- ops
	}
	return plan
}

// chooseBits sets each entry's width: forced, or (LRU) the widest, or from hotness and
// budget. Every expert gets the widest width at which all experts of the model fit in the
// budget (at least the base), hottest first while the layer's share of the budget holds.
// Then experts, hottest first, take further planes within the share: any expert when the
// plane is resident; a plane to load only for a hot expert (several tokens in this step,
// or with a profile a running count well above the layer's mean) and, with a profile,
// only while the layer's estimated loads stay hidden behind its estimated compute
// (D²MoE's point that hot experts compute longest and so hide the next loads).
func (c *Cache) chooseBits(plan []Entry, hist []float64, hotter func(a, b *Entry) bool) {
	b1, K := c.lay.BaseBits, c.lay.MaxBits
	fixed := c.o.Bits
	if c.o.Policy == LRU && fixed == 0 {
		fixed = K
	}
	if fixed != 0 {
		for i := range plan {
			plan[i].Bits = fixed
			for plan[i].Bits > b1 && c.sizeAt(plan[i].Bits) > c.budget {
				plan[i].Bits--
			}
		}
		return
	}
	w0 := b1
	for w := K; w > b1; w-- {
		if int64(c.nl*c.ne)*c.sizeAt(w) <= c.budget {
			w0 = w
			break
		}
	}
	share := max(c.budget/int64(c.nl), int64(len(plan))*c.sizeAt(b1))
	sum := int64(len(plan)) * c.sizeAt(b1)
	// Hotness order (the plan itself is in it for HEBF).
	ord := c.order[:0]
	for i := range plan {
		ord = append(ord, i)
		plan[i].Bits = b1
	}
	for i := 1; i < len(ord); i++ {
		for j := i; j > 0 && hotter(&plan[ord[j]], &plan[ord[j-1]]); j-- {
			ord[j], ord[j-1] = ord[j-1], ord[j]
		}
	}
	c.order = ord
	step := c.slotSize[1]
	for _, i := range ord {
		for plan[i].Bits < w0 && sum+step <= share {
			plan[i].Bits++
			sum += step
		}
	}
	resident := func(e *Entry, k int) bool { return c.slot[c.unit(c.layer, int(e.Expert), k)] >= 0 }
	var io, comp float64
	if c.tIO != nil {
		for i := range plan {
			e := &plan[i]
			comp += float64(e.Tokens) * c.tComp[e.Bits]
			for k := 0; k <= e.Bits-b1; k++ {
				if !resident(e, k) {
					io += c.tIO[k]
				}
			}
		}
	}
	var maxTok int32
	for i := range plan {
		maxTok = max(maxTok, plan[i].Tokens)
	}
	var mean float64
	for _, h := range hist {
		mean += h
	}
	mean /= float64(len(hist))
	for _, i := range ord {
		e := &plan[i]
		// Hot: several tokens in this step (and at least half the hottest's), or, with a
		// profile, a running count at least twice the layer's mean.
		hot := e.Tokens >= 2 && e.Tokens*2 >= maxTok
		if c.tIO != nil && mean > 0 && hist[e.Expert] >= 2*mean {
			hot = true
		}
		for e.Bits < K && sum+step <= share {
			k := e.Bits - b1 + 1
			if !resident(e, k) {
				if !hot {
					break
				}
				if c.tIO != nil {
					dc := float64(e.Tokens) * (c.tComp[e.Bits+1] - c.tComp[e.Bits])
					if io+c.tIO[k] > comp+dc {
						break
					}
					io += c.tIO[k]
				}
			}
			if c.tIO != nil {
				comp += float64(e.Tokens) * (c.tComp[e.Bits+1] - c.tComp[e.Bits])
			}
			e.Bits++
			sum += step
		}
	}
}

// alloc makes room for unit u (plane k) of plan entry j, evicting as the policy says, and
// appends the ops: releases of the victims' memory, then the load.
func (c *Cache) alloc(ops []op, u int32, k, j int) []op {
	cl := classOf(k)
	need := c.slotSize[cl]
	slot := int32(-1)
	wait := int32(-1)
	for c.inUse+need > c.budget {
		v, w := c.victim(j)
		if v < 0 {
			panic(fmt.Sprintf("sched: no plane can be evicted for a load of %s (budget %s for experts)", FormatSize(need), FormatSize(c.budget)))
		}
		wait = max(wait, w)
		vk := int(v) % c.levels
		vcl := classOf(vk)
		vs := c.slot[v]
		c.evict(v)
		if vcl == cl && slot < 0 {
			// Handed over: a read overwrites the slot, so its memory needs no release;
			// but with the Mmap backend the victim's pages in the mapping must go.
			slot = vs
			if c.o.Backend == Mmap {
				ops = append(ops, op{kind: opRelease, class: uint8(vcl), slot: vs, unit: v, wait: w, entry: -1})
			}
			continue
		}
		ops = append(ops, op{kind: opRelease, class: uint8(vcl), slot: vs, unit: v, wait: w, entry: -1})
		c.free[vcl] = append(c.free[vcl], vs)
	}
	if slot < 0 {
		if n := len(c.free[cl]); n > 0 {
			slot = c.free[cl][n-1]
			c.free[cl] = c.free[cl][:n-1]
		} else {
			slot = c.nextNew[cl]
			c.nextNew[cl]++
			if slot >= c.nSlots[cl] {
				panic("sched: slot arena exhausted within the budget (accounting bug)")
			}
		}
	}
	c.inUse += need
	c.slot[u] = slot
	if k > 0 {
		c.high[c.layer]++
	}
	return append(ops, op{kind: opLoad, class: uint8(cl), slot: slot, unit: u, wait: wait, entry: -1})
}

func (c *Cache) evict(v int32) {
	k := int(v) % c.levels
	c.inUse -= c.slotSize[classOf(k)]
	c.slot[v] = -1
	if k > 0 {
		c.high[int(v)/c.levels/c.ne]--
	}
	c.nEvict++
}

// victim picks the next unit to evict for plan entry j and the plan entry that must be
// computed before its memory is reused (-1: none).
func (c *Cache) victim(j int) (int32, int32) {
	if c.o.Policy == LRU {
		return c.victimLRU(j)
	}
	// 1. Residual planes, layer by layer from the one whose next use is farthest: the
	// current layer's unneeded experts, then the previous layer, and so on; in each layer
	// the highest planes first, coldest expert first.
	for d := 0; d < c.nl; d++ {
		l := (c.layer - d + c.nl) % c.nl
		if c.high[l] == 0 {
			continue
		}
		for k := c.levels - 1; k >= 1; k-- {
			if v := c.coldest(l, k); v >= 0 {
				return v, -1
			}
		}
	}
	// 2. Bases, coldest first over all layers (hot low planes stay); ties: farthest next use.
	best, bestH, bestD := int32(-1), 0.0, 0
	for d := 0; d < c.nl; d++ {
		l := (c.layer - d + c.nl) % c.nl
		for e := 0; e < c.ne; e++ {
			u := c.unit(l, e, 0)
			if c.slot[u] < 0 || c.pin[u] >= 0 {
				continue
			}
			h := c.hist[l*c.ne+e]
			if best < 0 || h < bestH || (h == bestH && d < bestD) {
				best, bestH, bestD = u, h, d
			}
		}
	}
	if best >= 0 {
		return best, -1
	}
	// 3. This layer's experts already computed in this step (planned before j), highest
	// plane of the earliest first: the load waits until that expert is computed.
	return c.computedVictim(j)
}

// coldest is the unpinned resident plane k of layer l with the lowest running count.
func (c *Cache) coldest(l, k int) int32 {
	best, bestH := int32(-1), 0.0
	for e := 0; e < c.ne; e++ {
		u := c.unit(l, e, k)
		if c.slot[u] < 0 || c.pin[u] >= 0 {
			continue
		}
		if h := c.hist[l*c.ne+e]; best < 0 || h < bestH {
			best, bestH = u, h
		}
	}
	return best
}

// computedVictim returns a resident plane of an entry p < j of the current plan (the
// top plane of the earliest such entry), and p.
func (c *Cache) computedVictim(j int) (int32, int32) {
	for p := 0; p < j; p++ {
		e := int(c.plan[p].Expert)
		for k := c.levels - 1; k >= 0; k-- {
			u := c.unit(c.layer, e, k)
			if c.slot[u] >= 0 && c.pin[u] == int32(p) {
				c.pin[u] = -1 // it leaves the plan's working set
				return u, int32(p)
			}
		}
	}
	return -1, -1
}

// victimLRU evicts whole experts: the least recently run unpinned expert (its top
// resident plane first; the following calls take the rest).
func (c *Cache) victimLRU(j int) (int32, int32) {
	best, bestT := -1, int64(0)
	for x := 0; x < c.nl*c.ne; x++ {
		l, e := x/c.ne, x%c.ne
		top := -1
		free := true
		for k := 0; k < c.levels; k++ {
			u := c.unit(l, e, k)
			if c.slot[u] >= 0 {
				top = k
				if c.pin[u] >= 0 {
					free = false
				}
			}
		}
		if top < 0 || !free {
			continue
		}
		if t := c.last[x]; best < 0 || t < bestT {
			best, bestT = x, t
		}
	}
	if best >= 0 {
		l, e := best/c.ne, best%c.ne
		for k := c.levels - 1; k >= 0; k-- {
			if u := c.unit(l, e, k); c.slot[u] >= 0 {
				return u, -1
			}
		}
	}
	return c.computedVictim(j)
}

// Wait blocks until plan entry i's planes are in memory and returns the end of the run of
// ready entries starting at i (at least i+1).
func (c *Cache) Wait(i int) int {
	c.mu.Lock()
	if !c.ready[i] {
		t0 := time.Now()
		for !c.ready[i] {
			c.cond.Wait()
		}
		c.stats.IOWait += time.Since(t0)
	}
	j := i + 1
	for j < len(c.plan) && c.ready[j] {
		j++
	}
	c.mu.Unlock()
	return j
}

// Computed reports that plan entries [0, n) are computed: their memory may be reused.
func (c *Cache) Computed(n int) {
	c.mu.Lock()
	c.computed = n
	c.cond.Broadcast()
	c.mu.Unlock()
}

// View returns part p (0 gate, 1 up, 2 down) of plane k of plan entry i: bytes in the
// cache's memory (or the mapping for the Mmap backend), to be read only between Wait(i)
// and Computed past i.
func (c *Cache) View(i, k, p int) []byte { return c.views[i][k][p] }

// setViews fixes the views of plane k of entry j (expert e of layer l, unit u) while u's
// slot is known: a later entry of the same plan may evict it once j is computed.
func (c *Cache) setViews(j, l, e, k int, u int32) {
	un := &c.lay.Units[l][e][k]
	for p := 0; p < 3; p++ {
		if c.o.Backend == Mmap {
			c.views[j][k][p] = un.View[p]
			continue
		}
		cl := classOf(k)
		o := int64(c.slot[u])*c.slotSize[cl] + c.partOff[cl][p] + un.Off[p]%align
		c.views[j][k][p] = c.io.arena[cl][o : o+int64(un.Len[p]) : o+int64(un.Len[p])]
	}
}

// Finish ends the layer's step: the plan's planes are no longer pinned.
func (c *Cache) Finish() {
	for _, u := range c.pinned {
		c.pin[u] = -1
	}
	c.pinned = c.pinned[:0]
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	s := c.stats
	c.mu.Unlock()
	s.Held, s.Peak = c.held.Load(), c.peak.Load()
	s.BytesLoaded = c.loadBytes.Load()
	return s
}

// Close stops the I/O worker and frees the cache's memory; the views it handed out must
// not be used afterwards.
func (c *Cache) Close() error {
	c.mu.Lock()
	for c.jobsDone < c.jobsSent {
		c.cond.Wait()
	}
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.jobs)
	return c.io.close()
}

// work is the I/O worker: it performs each job's ops in order.
func (c *Cache) work() {
	for ops := range c.jobs {
		for i := range ops {
			o := &ops[i]
			if o.wait >= 0 {
				c.mu.Lock()
				for c.computed <= int(o.wait) {
					c.cond.Wait()
				}
				c.mu.Unlock()
			}
			switch o.kind {
			case opRelease:
				c.io.release(o)
			case opLoad:
				t0 := time.Now()
				err := c.io.load(o)
				d := time.Since(t0)
				held := c.held.Load()
				for {
					p := c.peak.Load()
					if held <= p || c.peak.CompareAndSwap(p, held) {
						break
					}
				}
				if c.o.OnLoad != nil {
					c.o.OnLoad(held)
				}
				c.mu.Lock()
				c.stats.ReadTime += d
				if err != nil && c.stats.Err == nil {
					c.stats.Err = err
				}
				if o.entry >= 0 {
					c.ready[o.entry] = true
					c.cond.Broadcast()
				}
				c.mu.Unlock()
			}
		}
		c.mu.Lock()
		c.jobsDone++
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}
