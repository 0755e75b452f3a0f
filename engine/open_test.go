package engine

import (
	"path/filepath"
	"testing"

	"github.com/mole-llm/mole/engine/defaultmodel"
)

// TestOpen: Open binds a folder with the options' threads and load mode and gives the
// same logits as Load over the same files; the Model's Close closes what Open opened.
func TestOpen(t *testing.T) {
	sm := newSynth(synthSpecs[3], synthSpecs[3].seed) // mixtral
	dir := filepath.Join(t.TempDir(), "hf")
	sm.writeHF(t, dir, "")
	want := runAll(loadModelFile(t, dir), synthTokens)
	for _, mode := range []LoadMode{LoadMmap, LoadCopy} {
		m, err := Open(dir, OpenOptions{Load: mode, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		if m.Threads() != 2 || m.src.LoadMode() != mode {
			t.Errorf("%s: %d threads, weights %s; want 2 and %s", mode, m.Threads(), m.src.LoadMode(), mode)
		}
		got := runAll(m, synthTokens)
		for p := range want {
			for i := range want[p] {
				if got[p][i] != want[p][i] {
					t.Fatalf("%s: logit %d of position %d is %g, Load gave %g", mode, i, p, got[p][i], want[p][i])
				}
			}
		}
		m.Close()
		if m.closeFiles != nil {
			t.Errorf("%s: Close left the files open", mode)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing"), OpenOptions{}); err == nil {
		t.Error("Open of a missing path succeeded")
	}
}

// TestFile: a File lists what the embedded model holds and builds its tokenizer without
// binding it.
func TestFile(t *testing.T) {
	f, err := OpenHFFiles(defaultmodel.Name, defaultmodel.Files())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Path() != defaultmodel.Name || f.Format() != "safetensors" || f.LoadMode() != LoadMmap || f.Architecture() != "" {
		t.Errorf("path %q, format %q, load %s, architecture %q", f.Path(), f.Format(), f.LoadMode(), f.Architecture())
	}
	if _, ok := f.MetaString("general.architecture"); ok {
		t.Error("a safetensors folder has GGUF metadata")
	}
	ts := f.Tensors()
	var elems int64
	for _, ti := range ts {
		if ti.Bytes != ti.Elems()*2 && ti.Bytes != ti.Elems()*4 {
			t.Errorf("%s: %d bytes for %d %s elements", ti.Name, ti.Bytes, ti.Elems(), ti.DType)
		}
		elems += ti.Elems()
	}
	// kjv-moe has 13.9M parameters.
	if len(ts) == 0 || elems < 13_000_000 || elems > 15_000_000 {
		t.Errorf("%d tensors of %d elements in all", len(ts), elems)
	}
	tok, err := f.Tokenizer()
	if err != nil || tok == nil {
		t.Fatalf("tokenizer: %v", err)
	}
	m, err := f.Bind(OpenOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Threads() != 1 || m.Tok == nil {
		t.Errorf("%d threads, tokenizer %v", m.Threads(), m.Tok != nil)
	}
}

// TestParseOptions: the engine's parsers take what the command line gives them.
func TestParseOptions(t *testing.T) {
	if l, err := ParseLoadMode("copy"); err != nil || l != LoadCopy {
		t.Errorf("ParseLoadMode(copy) = %s, %v", l, err)
	}
	if _, err := ParseLoadMode("hugetlb"); err == nil {
		t.Error("ParseLoadMode(hugetlb) succeeded")
	}
	if i, err := ParseISA("generic"); err != nil || !ISASupported(i) {
		t.Errorf("ParseISA(generic) = %s, %v; supported %v", i, err, ISASupported(i))
	}
	prev, err := SetISA(must(ParseISA("generic")))
	if err != nil || ActiveISA().String() != "generic" {
		t.Errorf("SetISA(generic): %v, active %s", err, ActiveISA())
	}
	SetISA(prev)
	if p, err := ParseCachePolicy("lru4"); err != nil || p != LRU {
		t.Errorf("ParseCachePolicy(lru4) = %s, %v", p, err)
	}
	if b, err := ParseCacheIO("mmap"); err != nil || b != CacheMmap {
		t.Errorf("ParseCacheIO(mmap) = %s, %v", b, err)
	}
	if n, err := ParseSize("1.5G"); err != nil || n != 3<<29 || FormatSize(n) == "" {
		t.Errorf("ParseSize(1.5G) = %d, %v", n, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
