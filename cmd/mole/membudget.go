package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mole-llm/mole/engine"
)

// budgetFlags are --mem-budget and its companions (run, perplexity, serve).
type budgetFlags struct {
	size    string
	policy  string
	backend string
}

const memBudgetHelp = "memory for the weights, e.g. 512M or 1.5G: the always-resident part plus a cache of MWQ expert bit-planes " +
	"loaded from the file as the router asks (HEBF). Default: none when the model fits in 90% of the available memory, else that; \"off\" disables"

func (bf *budgetFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&bf.size, "mem-budget", "", memBudgetHelp)
	fs.StringVar(&bf.policy, "cache-policy", "hebf", "with --mem-budget: hebf (hottest expert first, widths by hotness), fcfs (first-come loads) or lru4 (whole experts at full width, LRU)")
	fs.StringVar(&bf.backend, "cache-io", "pread", "with --mem-budget: pread (O_DIRECT reads into memory the cache owns) or mmap (madvise WILLNEED on the mapping, for comparison: the kernel may map more of the page cache than the budget counts)")
}

// memBudgetFor resolves a --mem-budget value for m: 0 means no budget.
func memBudgetFor(m *engine.Model, spec string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(spec)) {
	case "off", "none", "0":
		return 0, nil
	case "", "auto":
		lay, err := m.ExpertLayout()
		if err != nil {
			return 0, nil // not an MWQ GGUF: runs as before
		}
		avail, err := engine.AvailableMemory()
		if err != nil {
			return 0, nil
		}
		if lay.Resident+lay.ExpertBytes() <= avail/10*9 {
			return 0, nil
		}
		return avail / 10 * 9, nil
	}
	n, err := engine.ParseSize(spec)
	if err != nil {
		return 0, fmt.Errorf("--mem-budget: %w", err)
	}
	return n, nil
}

// applyMemBudget puts m under the budget the flags ask for and describes it for the
// status line ("" when there is none). expertBits (--expert-bits) forces one width.
func applyMemBudget(m *engine.Model, bf budgetFlags, expertBits string) (string, error) {
	budget, err := memBudgetFor(m, bf.size)
	if err != nil || budget == 0 {
		return "", err
	}
	o := engine.BudgetOptions{Budget: budget}
	if o.Policy, err = engine.ParseCachePolicy(bf.policy); err != nil {
		return "", fmt.Errorf("--cache-policy: %w", err)
	}
	if s := strings.TrimSpace(expertBits); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return "", fmt.Errorf("--expert-bits %s: with --mem-budget, one width for every expert", s)
		}
		o.Bits = n
	}
	lay, err := m.ExpertLayout()
	if err != nil {
		return "", fmt.Errorf("--mem-budget: %w", err)
	}
	prof, _ := engine.ReadProfile(engine.ProfilePath(lay.Path)) // mole profile, when run
	o.Profile = prof
	if o.Backend, err = engine.ParseCacheIO(bf.backend); err != nil {
		return "", err
	}
	c, err := m.SetMemBudget(o)
	if err != nil {
		return "", fmt.Errorf("--mem-budget: %w", err)
	}
	io := o.Backend.String()
	if o.Backend == engine.CachePread {
		if c.Stats().DirectIO {
			io += " O_DIRECT"
		} else {
			io += " + fadvise(DONTNEED)"
		}
	}
	withProf := "no profile"
	if prof != nil {
		withProf = "profile " + engine.ProfilePath(lay.Path)
	}
	widths := fmt.Sprintf("MWQ experts at %d..%d bits by hotness and budget", lay.BaseBits, lay.MaxBits)
	switch {
	case o.Bits > 0:
		widths = fmt.Sprintf("MWQ experts at %d bits (--expert-bits)", o.Bits)
	case o.Policy == engine.LRU:
		widths = fmt.Sprintf("MWQ experts at %d bits (lru4)", lay.MaxBits)
	}
	return fmt.Sprintf("%s, memory budget %s (resident %s, expert cache %s of %s expert planes), %s, %s, %s",
		widths, engine.FormatSize(budget), engine.FormatSize(lay.Resident), engine.FormatSize(c.ExpertBudget()), engine.FormatSize(lay.ExpertBytes()), o.Policy, io, withProf), nil
}

// describeCache summarises a budgeted run's cache: hits, bytes read, I/O wait and the
// widths the experts ran at.
func describeCache(c *engine.ExpertCache) string {
	st := c.Stats()
	var mix []string
	var runs int64
	for b, n := range st.Mix {
		if n > 0 {
			mix = append(mix, fmt.Sprintf("%d bits %d", b, n))
			runs += n
		}
	}
	hit := 0.0
	if st.Hits+st.Misses > 0 {
		hit = 100 * float64(st.Hits) / float64(st.Hits+st.Misses)
	}
	s := fmt.Sprintf("expert cache: %d plane hits, %d misses (%.1f%% hits), %s read in %.0f ms, I/O wait %.0f ms, peak %s; expert runs by width: %s",
		st.Hits, st.Misses, hit, engine.FormatSize(st.BytesLoaded), ms(st.ReadTime), ms(st.IOWait), engine.FormatSize(st.Peak), strings.Join(mix, ", "))
	if st.Err != nil {
		s += "; read error: " + st.Err.Error()
	}
	return s
}
