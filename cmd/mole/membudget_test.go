//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mole-llm/mole/bench"
	"github.com/mole-llm/mole/engine"
)

// tinyMWQ writes a tiny random mwq24 model (bench's generator) and returns its path and
// its always-resident and expert bytes.
func tinyMWQ(t *testing.T) (string, int64, int64) {
	t.Helper()
	shape, err := bench.PresetByName("tiny-moe")
	if err != nil {
		t.Fatal(err)
	}
	shape.NFFExpert = 256
	path := filepath.Join(t.TempDir(), "tiny-mwq24.gguf")
	if err := bench.GenerateGGUF(path, bench.GenOptions{Shape: shape, Arch: "olmoe", Scheme: "mwq24", Seed: 9}); err != nil {
		t.Fatal(err)
	}
	m, err := engine.Open(path, engine.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lay, err := m.ExpertLayout()
	if err != nil {
		t.Fatal(err)
	}
	return path, lay.Resident, lay.ExpertBytes()
}

// TestMemBudgetFlag: mole run under --mem-budget at a forced width prints the same text as
// without a budget at that width and reports the cache; a budget below the resident part is
// refused with the error that says so.
func TestMemBudgetFlag(t *testing.T) {
	path, res, exp := tinyMWQ(t)
	budget := strconv.FormatInt(res+exp*7/10, 10)
	plain, _ := greedy(t, "-m", path, "--expert-bits", "3")
	for _, pol := range []string{"hebf", "fcfs", "lru4"} {
		got, errOut := greedy(t, "-m", path, "--expert-bits", "3", "--mem-budget", budget, "--cache-policy", pol)
		if got != plain {
			t.Errorf("%s: --mem-budget %s gave %q, resident %q", pol, budget, got, plain)
		}
		if !strings.Contains(errOut, "memory budget") || !strings.Contains(errOut, "expert cache:") {
			t.Errorf("%s: budget not reported:\n%s", pol, errOut)
		}
	}
	code, _, errOut := runMole(t, "", "run", "-m", path, "--mem-budget", strconv.FormatInt(res/2, 10), "x")
	if code == 0 || !strings.Contains(errOut, "below the always-resident part") {
		t.Errorf("budget of half the resident part: exit %d, %s", code, errOut)
	}
	code, _, errOut = runMole(t, "", "run", "-m", path, "--mem-budget", "12Q", "x")
	if code == 0 || !strings.Contains(errOut, "--mem-budget") {
		t.Errorf("bad size: exit %d, %s", code, errOut)
	}
}

// TestProfileOutputPreflight: profile writes beside the model; a directory in the way of
// MODEL.profile.json stops it before the measurements (as root too). Linux-only like the
// memory budget's helpers (tinyMWQ).
func TestProfileOutputPreflight(t *testing.T) {
	mwq, _, _ := tinyMWQ(t)
	if err := os.Mkdir(mwq+".profile.json", 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, errs := runMole(t, "", "profile", "-m", mwq)
	if code != 1 || stdout != "" || !strings.Contains(errs, mwq+".profile.json") || strings.Count(errs, "\n") != 1 {
		t.Errorf("profile: status %d, stdout %q, stderr %q", code, stdout, errs)
	}
}
