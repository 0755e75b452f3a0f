package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// convert-mole writes a MoLE file by either path (in memory, or layer by layer with
// --stream), mole info describes it and mole run generates from it; options the
// streaming path cannot honour are refused without leaving a file behind.
func TestConvertMoLECLI(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.gguf")
	if code, _, errs := runMole(t, "", "gen-model", "--preset", "tiny-moe", "--type", "f16", "-o", model); code != 0 {
		t.Fatalf("gen-model: %s", errs)
	}
	for _, stream := range []bool{false, true} {
		out := filepath.Join(dir, "mole.gguf")
		args := []string{"convert-mole", "-m", model, "-o", out, "--rank", "8"}
		if stream {
			args = append(args, "--stream")
		}
		code, stdout, errs := runMole(t, "", args...)
		if code != 0 || !strings.Contains(stdout, "expert parameters:") || !strings.Contains(stdout, "layer 0: rank gate 8 up 8 down 8") {
			t.Fatalf("convert-mole stream=%v: %d %s\n%s", stream, code, errs, stdout)
		}
		code, stdout, errs = runMole(t, "", "info", out)
		if code != 0 || !strings.Contains(stdout, "latent experts") || !strings.Contains(stdout, "mole, 1 basis group(s)") {
			t.Errorf("info after convert-mole stream=%v: %d %s\n%s", stream, code, errs, stdout)
		}
		code, stdout, errs = runMole(t, "", "run", "-m", out, "-n", "4", "--temp", "0", "Once")
		if code != 0 || stdout == "" {
			t.Errorf("run after convert-mole stream=%v: %d %s", stream, code, errs)
		}
		os.Remove(out)
	}
	bad := filepath.Join(dir, "bad.gguf")
	code, _, errs := runMole(t, "", "convert-mole", "-m", model, "-o", bad, "--rank", "8", "--stream", "--groups", "2")
	if code != 1 || !strings.Contains(errs, "streaming") {
		t.Errorf("convert-mole --stream --groups 2: %d %s", code, errs)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a refused conversion left %s behind (%v)", bad, err)
	}
}
