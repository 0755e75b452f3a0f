//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mole-llm/mole/engine"
	"github.com/mole-llm/mole/sched"
)

// TestRunHEBF runs the memory-budget benchmark on a tiny generated mwq24 model: every
// policy at two budgets plus the resident row, with tokens/s measured, the cache's counters
// in the rows (a 70% budget must miss and read: slots are page-rounded), and a markdown table and a well-formed
// SVG written.
func TestRunHEBF(t *testing.T) {
	shape := tinyShape(t)
	shape.NFFExpert = 256 // whole MWQ groups in the down projections
	path := filepath.Join(t.TempDir(), "tiny-mwq24.gguf")
	if err := GenerateGGUF(path, GenOptions{Shape: shape, Arch: "olmoe", Scheme: "mwq24", Seed: 3}); err != nil {
		t.Fatal(err)
	}
	o := HEBFOptions{
		Model: path, Fractions: []float64{0.7, 1}, Policies: sched.Policies,
		Warm: 2, Gen: 4, Parallel: 3, Resident: true,
		Open: func(p string) (*engine.Model, func(), error) {
			_, m := load(t, p)
			return m, func() {}, nil
		},
	}
	rep, err := RunHEBF(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1+2*len(sched.Policies) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), 1+2*len(sched.Policies))
	}
	for _, x := range rep.Rows {
		if !(x.TG > 0) || !(x.Par > 0) {
			t.Errorf("%s at %.2f: tg %v, parallel %v", x.Policy, x.Fraction, x.TG, x.Par)
		}
		if x.Policy != "resident" && x.Fraction < 0.8 && (x.ReadPerToken <= 0 || x.HitRate >= 1) {
			t.Errorf("%s at 70%%: read %v MiB/token, hit rate %v: a small budget must load", x.Policy, x.ReadPerToken, x.HitRate)
		}
	}
	var md, svg bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 70% |", "hebf", "lru4", "HEBF / LRU at 70%"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG: %v", err)
			}
			break
		}
	}
}
