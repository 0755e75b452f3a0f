package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CI line, `mole bench -m bench-moe.gguf -p 64 -n 16 -r 2 -t 1`, on a model
// gen-model writes in the test, with JSON output in which every promised field is set.
// The model is bench-moe itself (Q4_0, 0.34 GiB); -short uses the hidden tiny-moe preset.
func TestBenchCLI(t *testing.T) {
	dir := t.TempDir()
	preset := "bench-moe"
	if testing.Short() {
		preset = "tiny-moe"
	}
	model := filepath.Join(dir, "bench-moe.gguf")
	if code, _, errs := runMole(t, "", "gen-model", "--preset", preset, "--type", "q4_0", "-o", model); code != 0 {
		t.Fatalf("gen-model: %s", errs)
	}
	svg := filepath.Join(dir, "b.svg")
	code, out, errs := runMole(t, "", "bench", "-m", model, "-p", "64", "-n", "16", "-r", "2", "-t", "1", "-o", "json", "--svg", svg)
	if code != 0 {
		t.Fatalf("bench: %s", errs)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"cpu_info", "cpu_cores", "gomaxprocs", "os", "arch", "isa", "go_version", "build_commit", "test_time", "roofline", "results", "notes"} {
		if isZero(rep[k]) {
			t.Errorf("report field %s is missing or empty", k)
		}
	}
	results, _ := rep["results"].([]any)
	if len(results) != 2 {
		t.Fatalf("%d results, want pp64 and tg16", len(results))
	}
	for _, r := range results {
		row := r.(map[string]any)
		for _, k := range []string{"model_filename", "model_type", "model_size", "model_n_params", "model_n_params_active",
			"backends", "isa", "n_threads", "test", "pp_mode", "repetitions", "samples_ns", "samples_ts", "avg_ns", "avg_ts",
			"bytes_per_token", "macs_per_token", "gb_s", "roofline_ts", "roofline_by", "roofline_pct", "read_gb_s",
			"peak_gmac_s", "peak_gflop_s", "peak_rss_bytes", "traffic"} {
			if isZero(row[k]) {
				t.Errorf("%v: field %s is missing or zero", row["test"], k)
			}
		}
		for _, k := range []string{"stddev_ts", "stddev_ns", "n_prompt", "n_gen"} {
			if _, ok := row[k]; !ok {
				t.Errorf("%v: field %s is missing", row["test"], k)
			}
		}
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<polyline") {
		t.Errorf("--svg wrote no plot: %v", err)
	}
	// The markdown table carries llama-bench's columns.
	code, out, errs = runMole(t, "", "bench", "-m", model, "-p", "0", "-n", "4", "-r", "1", "-t", "1")
	if code != 0 || !strings.Contains(out, "| model | size | params | backend | threads | test | t/s |") || !strings.Contains(out, "| tg4 |") {
		t.Errorf("markdown bench: %d %s\n%s", code, errs, out)
	}
	if code, _, errs := runMole(t, "", "bench", "-m", model, "-o", "xml"); code != 1 || !strings.Contains(errs, "-o") {
		t.Errorf("bad -o: %d %s", code, errs)
	}
	if code, _, errs := runMole(t, "", "gen-model", "--preset", "nope", "-o", filepath.Join(dir, "x.gguf")); code != 1 || !strings.Contains(errs, "bench-moe") {
		t.Errorf("bad preset: %d %s", code, errs)
	}
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
