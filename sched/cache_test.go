//go:build linux

package sched

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// synthLayout writes a file of random bytes and a layout of nl layers x ne experts whose
// planes (base 2 bits, planes 3 and 4) lie at unaligned offsets in it, as GGUF tensors do.
func synthLayout(t *testing.T, nl, ne, topK int) (*Layout, []byte) {
	t.Helper()
	const baseLen, planeLen = 9000, 4500 // per part
	levels := 3
	size := int64(nl*ne*3*(baseLen+2*planeLen) + 64*nl*ne*levels*3 + 4096)
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "model.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Views into a mapping of the file, as the engine's are (the Mmap backend madvises them).
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err = unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(data) })
	lay := &Layout{Path: path, NLayer: nl, NExpert: ne, TopK: topK, BaseBits: 2, MaxBits: 4, Resident: 1 << 20}
	off := int64(96) // like a GGUF header: nothing is page-aligned
	lay.Units = make([][][]Unit, nl)
	for l := range lay.Units {
		lay.Units[l] = make([][]Unit, ne)
		for e := range lay.Units[l] {
			lay.Units[l][e] = make([]Unit, levels)
			for k := range levels {
				n := planeLen
				if k == 0 {
					n = baseLen
				}
				u := &lay.Units[l][e][k]
				for p := range 3 {
					u.Off[p], u.Len[p] = off, n
					u.View[p] = data[off : off+int64(n)]
					off += int64(n) + 32
				}
			}
		}
	}
	return lay, data
}

// route draws a step: tokens of topK distinct experts each, skewed towards low expert ids.
func route(r *rand.Rand, ne, topK, tokens int) (experts, counts []int32) {
	idx := map[int32]int{}
	for range tokens {
		seen := map[int32]bool{}
		for len(seen) < topK {
			e := int32(min(r.ExpFloat64()*float64(ne)/3, float64(ne-1)))
			if seen[e] {
				e = int32(r.IntN(ne))
			}
			if seen[e] {
				continue
			}
			seen[e] = true
			if i, ok := idx[e]; ok {
				counts[i]++
			} else {
				idx[e] = len(experts)
				experts = append(experts, e)
				counts = append(counts, 1)
			}
		}
	}
	return experts, counts
}

// TestCacheLoadsExactBytes runs random routing through every policy and backend with a
// budget of a fraction of the expert bytes: every view of every entry must equal the file's
// bytes of that plane once Wait returns, the budget must hold after every load (the
// worker's byte counter and, for the pread arena, the pages mincore finds resident), and
// the plans (order, widths) must not depend on the backend.
func TestCacheLoadsExactBytes(t *testing.T) {
	const nl, ne, topK = 3, 8, 2
	lay, _ := synthLayout(t, nl, ne, topK)
	for _, pol := range Policies {
		var plans [2][]string
		for bi, be := range []Backend{Pread, Mmap} {
			for _, frac := range []float64{0.25, 0.6} {
				budget := lay.Resident + int64(frac*float64(lay.ExpertBytes()))
				var over atomic.Int64
				c, err := New(lay, Options{Budget: budget, Policy: pol, Backend: be, OnLoad: func(held int64) {
					if held > budget-lay.Resident {
						over.Store(held)
					}
				}})
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(7, uint64(frac*100)))
				for step := 0; step < 60; step++ {
					l := step % nl
					ex, cnt := route(r, ne, topK, 1+step%4)
					plan := c.Plan(l, ex, cnt)
					if frac == 0.25 {
						var sb strings.Builder
						for _, e := range plan {
							sb.WriteString(string(rune('a'+e.Expert)) + string(rune('0'+e.Bits)))
						}
						plans[bi] = append(plans[bi], sb.String())
					}
					for i := 0; i < len(plan); {
						j := c.Wait(i)
						for ; i < j; i++ {
							e := plan[i]
							if e.Bits < 2 || e.Bits > 4 {
								t.Fatalf("width %d", e.Bits)
							}
							for k := 0; k <= e.Bits-2; k++ {
								for p := range 3 {
									if got, want := c.View(i, k, p), lay.Units[l][e.Expert][k].View[p]; !bytes.Equal(got, want) {
										t.Fatalf("%v %v step %d: expert %d plane %d part %d differs from the file", pol, be, step, e.Expert, k, p)
									}
								}
							}
						}
						c.Computed(i)
					}
					c.Finish()
					if be == Pread {
						if res := residentBytes(t, c); res > c.ExpertBudget() {
							t.Fatalf("%v: %d bytes of the arena resident, budget %d", pol, res, c.ExpertBudget())
						}
					}
				}
				st := c.Stats()
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				if v := over.Load(); v != 0 {
					t.Errorf("%v %v %.2f: the cache held %d bytes, over its %d", pol, be, frac, v, budget-lay.Resident)
				}
				if st.Peak > c.ExpertBudget() || st.Misses == 0 || (st.Hits == 0 && frac > 0.5) || st.Err != nil {
					t.Errorf("%v %v %.2f: stats %+v", pol, be, frac, st)
				}
				t.Logf("%v %v budget %.2f: hits %d misses %d evictions %d peak %d of %d, direct %v, mix %v", pol, be, frac, st.Hits, st.Misses, st.Evictions, st.Peak, c.ExpertBudget(), st.DirectIO, st.Mix[2:5])
			}
		}
		if strings.Join(plans[0], " ") != strings.Join(plans[1], " ") {
			t.Errorf("%v: plans differ between backends", pol)
		}
	}
}

// residentBytes counts the arena pages the kernel holds (mincore).
func residentBytes(t *testing.T, c *Cache) int64 {
	var n int64
	ps := int64(os.Getpagesize())
	for _, a := range c.io.arena {
		if len(a) == 0 {
			continue
		}
		vec := make([]byte, (int64(len(a))+ps-1)/ps)
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&a[0])), uintptr(len(a)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		for _, v := range vec {
			if v&1 != 0 {
				n += ps
			}
		}
	}
	return n
}

// TestCacheOrderAndWidths checks HEBF's order (most tokens first, then the running count),
// first-come order, LRU's full width, forced widths, and that with a budget holding every
// expert at every width all run at the widest and a second pass hits everything.
func TestCacheOrderAndWidths(t *testing.T) {
	lay, _ := synthLayout(t, 2, 8, 2)
	full := lay.Resident + 4*lay.ExpertBytes()
	c, err := New(lay, Options{Budget: full})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ex, cnt := []int32{5, 1, 3}, []int32{1, 3, 2}
	run := func(c *Cache, l int) []Entry {
		plan := append([]Entry(nil), c.Plan(l, ex, cnt)...)
		for i := 0; i < len(plan); {
			i = c.Wait(i)
			c.Computed(i)
		}
		c.Finish()
		return plan
	}
	plan := run(c, 0)
	if plan[0].Expert != 1 || plan[1].Expert != 3 || plan[2].Expert != 5 {
		t.Errorf("HEBF order %+v, want experts 1, 3, 5", plan)
	}
	for _, e := range plan {
		if e.Bits != 4 {
			t.Errorf("budget for everything: expert %d at %d bits", e.Expert, e.Bits)
		}
	}
	h0 := c.Stats().Hits
	run(c, 0)
	if st := c.Stats(); st.Hits-h0 != 9 {
		t.Errorf("second pass: %d hits, want 9", st.Hits-h0)
	}

	fc, err := New(lay, Options{Budget: full, Policy: FirstCome, Bits: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	plan = run(fc, 1)
	for i, e := range plan {
		if e.Expert != ex[i] || e.Bits != 3 {
			t.Errorf("first-come, forced 3 bits: %+v", plan)
		}
	}
	// A tight budget: cold experts at the base, the hot one (3 tokens) wider.
	tight := lay.Resident + lay.ExpertBytes()/2
	hc, err := New(lay, Options{Budget: tight})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	plan = run(hc, 0)
	if plan[0].Bits <= plan[2].Bits || plan[2].Bits != 2 {
		t.Errorf("tight budget widths %+v: want the hottest wider than the coldest, the coldest at the base", plan)
	}
	lc, err := New(lay, Options{Budget: full, Policy: LRU})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	for _, e := range run(lc, 0) {
		if e.Bits != 4 {
			t.Errorf("LRU at %d bits", e.Bits)
		}
	}
}

// TestCacheRefusesSmallBudgets: below the resident part, and below the minimum working set.
func TestCacheRefusesSmallBudgets(t *testing.T) {
	lay, _ := synthLayout(t, 2, 4, 2)
	_, err := New(lay, Options{Budget: lay.Resident - 1})
	if err == nil || !strings.Contains(err.Error(), "below the always-resident part") {
		t.Errorf("budget below the resident part: %v", err)
	}
	_, err = New(lay, Options{Budget: lay.Resident + 10000})
	if err == nil || !strings.Contains(err.Error(), "2 experts at base width") {
		t.Errorf("budget below the working set: %v", err)
	}
	_, err = New(lay, Options{Budget: lay.Resident + 60000, Policy: LRU})
	if err == nil || !strings.Contains(err.Error(), "full width") {
		t.Errorf("LRU budget below two whole experts: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{"512M": 512 << 20, "1.5G": 3 << 29, "100": 100, "2GiB": 2 << 30, "4k": 4096} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "x", "-1G", "1Q"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}
