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

// gen-model writes mole's own types; mole info shows the scheme and mole bench runs them.
func TestGenModelMoleTypes(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []string{"q8", "a8w4", "mwq24", "mwq58"} {
		model := filepath.Join(dir, typ+".gguf")
		if code, _, errs := runMole(t, "", "gen-model", "--preset", "tiny-moe", "--type", typ, "-o", model); code != 0 || !strings.Contains(errs, "mole "+typ) {
			t.Fatalf("gen-model --type %s: %d %s", typ, code, errs)
		}
		code, out, errs := runMole(t, "", "info", model)
		if code != 0 || !strings.Contains(out, "scheme "+typ+", group size 128, router f16") {
			t.Errorf("info %s: %d %s\n%s", typ, code, errs, out)
		}
		if strings.HasPrefix(typ, "mwq") && !strings.Contains(out, "MWQ bits") {
			t.Errorf("info %s: no MWQ bits\n%s", typ, out)
		}
		if typ == "q8" || typ == "mwq58" {
			continue // each bench run measures a roofline first: two schemes suffice
		}
		code, out, errs = runMole(t, "", "bench", "-m", model, "-p", "8", "-n", "4", "-r", "1", "-t", "1")
		if code != 0 || !strings.Contains(out, "| tg4 |") || !strings.Contains(out, "| pp8 |") {
			t.Errorf("bench %s: %d %s\n%s", typ, code, errs, out)
		}
		if typ != "mwq24" {
			continue
		}
		// Each width is a row of its own, in the JSON too.
		code, out, errs = runMole(t, "", "bench", "-m", model, "-p", "0", "-n", "4", "-r", "1", "-t", "1", "--expert-bits", "4,2", "-o", "json")
		var rep struct {
			Results []struct {
				ExpertBits int   `json:"expert_bits"`
				Bytes      int64 `json:"bytes_per_token"`
			} `json:"results"`
		}
		if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Results) != 2 ||
			rep.Results[0].ExpertBits != 2 || rep.Results[1].ExpertBits != 4 || rep.Results[0].Bytes >= rep.Results[1].Bytes {
			t.Errorf("bench --expert-bits 4,2: %d %v %s\n%s", code, err, errs, out)
		}
		if code, _, errs := runMole(t, "", "bench", "-m", model, "-n", "4", "--expert-bits", "8"); code != 1 || !strings.Contains(errs, "2 to 4 bits") {
			t.Errorf("bench --expert-bits 8 on mwq24: %d %s", code, errs)
		}
	}
	if code, _, errs := runMole(t, "", "gen-model", "--preset", "tiny-moe", "--type", "q5", "-o", filepath.Join(dir, "x.gguf")); code != 1 || !strings.Contains(errs, "a8w4") {
		t.Errorf("bad type: %d %s", code, errs)
	}
}
