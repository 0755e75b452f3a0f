package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mole-llm/mole/engine"
)

// expertBitsHelp documents --expert-bits (run, perplexity and every command using
// modelFlags).
const expertBitsHelp = "width of MWQ experts: N bits for every layer, or a per-layer map like 0-1:4,2-3:2 " +
	"(unlisted layers read the widest stored width); default: widest"

// parseExpertBits turns an --expert-bits value into one width per layer (0 = widest
// stored). It accepts "N" or comma-separated "L:N" / "A-B:N" items.
func parseExpertBits(spec string, nLayer int) ([]int, error) {
	spec = strings.TrimSpace(spec)
	bits := make([]int, nLayer)
	if n, err := strconv.Atoi(spec); err == nil {
		if n < 1 {
			return nil, fmt.Errorf("--expert-bits %s: want a positive width", spec)
		}
		for l := range bits {
			bits[l] = n
		}
		return bits, nil
	}
	for _, item := range strings.Split(spec, ",") {
		lr, nb, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			return nil, fmt.Errorf("--expert-bits %q: item %q is not LAYERS:BITS (e.g. 0-1:4)", spec, item)
		}
		n, err := strconv.Atoi(strings.TrimSpace(nb))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--expert-bits %q: %q is not a positive width", spec, nb)
		}
		a, b, isRange := strings.Cut(strings.TrimSpace(lr), "-")
		lo, err1 := strconv.Atoi(a)
		hi := lo
		var err2 error
		if isRange {
			hi, err2 = strconv.Atoi(b)
		}
		if err1 != nil || err2 != nil || lo < 0 || hi < lo || hi >= nLayer {
			return nil, fmt.Errorf("--expert-bits %q: layers %q are not a range within 0-%d", spec, lr, nLayer-1)
		}
		for l := lo; l <= hi; l++ {
			bits[l] = n
		}
	}
	return bits, nil
}

// applyExpertBits sets the MWQ width of m's experts from an --expert-bits value ("" leaves
// the widest) and describes the result for the status line ("" for non-MWQ models).
func applyExpertBits(m *engine.Model, spec string) (string, error) {
	b1, k, ok := m.MWQBits()
	if spec == "" {
		if !ok {
			return "", nil
		}
		return fmt.Sprintf("MWQ experts at %d bits (base %d)", k, b1), nil
	}
	if !ok {
		return "", fmt.Errorf("--expert-bits %s: this model has no MWQ experts (quantize with --type mwq24 or mwq58)", spec)
	}
	bits, err := parseExpertBits(spec, m.Config.NLayer)
	if err != nil {
		return "", err
	}
	for _, b := range bits {
		if b != 0 && (b < b1 || b > k) {
			return "", fmt.Errorf("--expert-bits %s: this model's experts can be read at %d to %d bits", spec, b1, k)
		}
	}
	got := m.SetExpertBits(bits)
	same := true
	for _, b := range got {
		same = same && b == got[0]
	}
	if same {
		return fmt.Sprintf("MWQ experts at %d bits (base %d, stored up to %d)", got[0], b1, k), nil
	}
	return fmt.Sprintf("MWQ experts at %v bits per layer (base %d, stored up to %d)", got, b1, k), nil
}
