package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HFFiles holds the small files of a Hugging Face model folder. Each is nil when absent.
type HFFiles struct {
	Dir                  string
	ConfigJSON           []byte
	GenerationConfigJSON []byte
	TokenizerJSON        []byte
	TokenizerConfigJSON  []byte
	SpecialTokensMapJSON []byte
	TokenizerModel       []byte            // tokenizer.model (SentencePiece protobuf)
	Metadata             map[string]string // safetensors __metadata__ merged over shards
}

// Model is an opened model: a GGUF file or a safetensors folder.
type Model struct {
	Path    string
	Format  string    // "gguf" or "safetensors"
	GGUF    *GGUFFile // non-nil for GGUF
	HF      *HFFiles  // non-nil for safetensors folders
	Tensors []*Tensor // all tensors, file order (shards in index order)

	byName   map[string]*Tensor
	mappings []*Mapping
	anon     *anonRegion // the weights after CopyToAnon (hugepage.go)
}

// Tensor returns the tensor called name.
func (m *Model) Tensor(name string) (*Tensor, bool) {
	t, ok := m.byName[name]
	return t, ok
}

// Close unmaps the model's files (or its copy of the weights); its tensors must not be
// used afterwards.
func (m *Model) Close() error {
	var errs []error
	for _, mp := range m.mappings {
		errs = append(errs, mp.Close())
	}
	m.mappings = nil
	errs = append(errs, m.anon.close())
	m.anon = nil
	return errors.Join(errs...)
}

func (m *Model) index() {
	m.byName = make(map[string]*Tensor, len(m.Tensors))
	for _, t := range m.Tensors {
		m.byName[t.Name] = t
	}
}

const (
	hfIndexFile       = "model.safetensors.index.json"
	hfSingleFile      = "model.safetensors"
	safetensorsSuffix = ".safetensors"
)

// Open opens a model: a .gguf file (or any file starting with the GGUF magic), a
// .safetensors file (with the other files of its folder), a safetensors index file, or a
// Hugging Face folder. The files are memory-mapped; call Close when done.
func Open(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if st.IsDir() {
		return openDir(path)
	}
	if strings.HasSuffix(path, ".safetensors.index.json") {
		return openHF(path, &dirSource{dir: filepath.Dir(path)}, "", filepath.Base(path))
	}
	if strings.HasSuffix(path, safetensorsSuffix) {
		return openHF(path, &dirSource{dir: filepath.Dir(path)}, filepath.Base(path), "")
	}
	mp, err := Map(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(strings.ToLower(path), ".gguf") || bytes.HasPrefix(mp.Data, []byte(ggufMagic)) {
		return openGGUF(path, mp)
	}
	mp.Close()
	return nil, fmt.Errorf("loader: %s: not a model file (expected a .gguf file, a .safetensors file or a Hugging Face folder)", path)
}

func openGGUF(path string, mp *Mapping) (*Model, error) {
	g, err := ParseGGUF(path, mp.Data)
	if err != nil {
		mp.Close()
		return nil, err
	}
	m := &Model{Path: path, Format: "gguf", GGUF: g, Tensors: g.Tensors, mappings: []*Mapping{mp}}
	m.index()
	return m, nil
}

// openDir opens a folder: safetensors (index, model.safetensors, or every *.safetensors)
// or, failing that, a folder holding exactly one .gguf file.
func openDir(dir string) (*Model, error) {
	src := &dirSource{dir: dir}
	names, err := src.list()
	if err != nil {
		return nil, err
	}
	var ggufs []string
	hasST := false
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, safetensorsSuffix), n == hfIndexFile:
			hasST = true
		case strings.HasSuffix(strings.ToLower(n), ".gguf"):
			ggufs = append(ggufs, n)
		}
	}
	if !hasST && len(ggufs) == 1 {
		p := filepath.Join(dir, ggufs[0])
		mp, err := Map(p)
		if err != nil {
			return nil, err
		}
		return openGGUF(p, mp)
	}
	if !hasST && len(ggufs) > 1 {
		return nil, fmt.Errorf("loader: %s: folder holds several .gguf files (%s); open one of them", dir, strings.Join(ggufs, ", "))
	}
	return openHF(dir, src, "", "")
}

// OpenHFFiles opens an in-memory Hugging Face folder: files maps file names (base names,
// e.g. "model.safetensors", "config.json") to their contents. Tensors are views into
// those slices, which must stay unmodified while the model is used. name is used as Path
// and in errors.
func OpenHFFiles(name string, files map[string][]byte) (*Model, error) {
	return openHF(name, memSource{name: name, files: files}, "", "")
}

// hfSource abstracts a folder on disk and an in-memory folder.
type hfSource interface {
	list() ([]string, error)
	// has reports whether a file exists, without reading it.
	has(name string) bool
	// read returns a small file's contents, or nil, nil when it does not exist.
	read(name string) ([]byte, error)
	// mapFile returns a large file's bytes (mapped on disk) and the name for errors.
	mapFile(name string) ([]byte, string, error)
	mappings() []*Mapping
	close()
}

type dirSource struct {
	dir  string
	maps []*Mapping
}

func (s *dirSource) list() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (s *dirSource) has(name string) bool {
	st, err := os.Stat(filepath.Join(s.dir, name))
	return err == nil && !st.IsDir()
}

func (s *dirSource) read(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if b == nil {
		b = []byte{} // present but empty is not absent
	}
	return b, nil
}

func (s *dirSource) mapFile(name string) ([]byte, string, error) {
	p := filepath.Join(s.dir, name)
	mp, err := Map(p)
	if err != nil {
		return nil, p, err
	}
	s.maps = append(s.maps, mp)
	return mp.Data, p, nil
}

func (s *dirSource) mappings() []*Mapping { return s.maps }

func (s *dirSource) close() {
	for _, mp := range s.maps {
		mp.Close()
	}
	s.maps = nil
}

type memSource struct {
	name  string
	files map[string][]byte
}

func (s memSource) list() ([]string, error) {
	names := make([]string, 0, len(s.files))
	for n := range s.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (s memSource) has(name string) bool { _, ok := s.files[name]; return ok }

func (s memSource) read(name string) ([]byte, error) {
	b, ok := s.files[name]
	if !ok {
		return nil, nil
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (s memSource) mapFile(name string) ([]byte, string, error) {
	b, ok := s.files[name]
	errName := s.name + "/" + name
	if !ok {
		return nil, errName, fmt.Errorf("loader: %s: file not found", errName)
	}
	return b, errName, nil
}

func (s memSource) mappings() []*Mapping { return nil }
func (s memSource) close()               {}

// openHF opens a safetensors folder. only, when set, restricts the tensors to that one
// file; index, when set, names the index file to use.
func openHF(path string, src hfSource, only, index string) (m *Model, err error) {
	defer func() {
		if err != nil {
			src.close()
		}
	}()
	hf := &HFFiles{Dir: path}
	if ds, ok := src.(*dirSource); ok {
		hf.Dir = ds.dir
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{
		{"config.json", &hf.ConfigJSON},
		{"generation_config.json", &hf.GenerationConfigJSON},
		{"tokenizer.json", &hf.TokenizerJSON},
		{"tokenizer_config.json", &hf.TokenizerConfigJSON},
		{"special_tokens_map.json", &hf.SpecialTokensMapJSON},
		{"tokenizer.model", &hf.TokenizerModel},
	} {
		if *f.dst, err = src.read(f.name); err != nil {
			return nil, err
		}
	}

	shards, weightMap, index, err := hfShards(path, src, only, index)
	if err != nil {
		return nil, err
	}
	m = &Model{Path: path, Format: "safetensors", HF: hf}
	owner := map[string]string{}
	for _, shard := range shards {
		data, errName, err := src.mapFile(shard)
		if err != nil {
			return nil, err
		}
		ts, meta, err := ParseSafetensors(errName, data)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if prev, dup := owner[t.Name]; dup {
				return nil, fmt.Errorf("loader: %s: tensor %s is in both %s and %s", path, Quote(t.Name), prev, shard)
			}
			owner[t.Name] = shard
			if weightMap != nil {
				if want, listed := weightMap[t.Name]; listed && want != shard {
					return nil, fmt.Errorf("loader: %s: tensor %s is in %s but %s maps it to %s", path, Quote(t.Name), shard, index, want)
				}
			}
		}
		m.Tensors = append(m.Tensors, ts...)
		for k, v := range meta {
			if hf.Metadata == nil {
				hf.Metadata = map[string]string{}
			}
			hf.Metadata[k] = v
		}
	}
	for name, shard := range weightMap {
		if _, ok := owner[name]; !ok {
			return nil, fmt.Errorf("loader: %s: %s maps tensor %s to %s, which does not contain it", path, index, Quote(name), shard)
		}
	}
	m.mappings = src.mappings()
	m.index()
	return m, nil
}

// hfShards decides which safetensors files make up the model, in order, and returns the
// index's weight_map when an index is used.
func hfShards(path string, src hfSource, only, index string) ([]string, map[string]string, string, error) {
	if only != "" {
		return []string{only}, nil, "", nil
	}
	if index == "" && src.has(hfIndexFile) {
		index = hfIndexFile
	}
	if index != "" {
		b, err := src.read(index)
		if err != nil {
			return nil, nil, "", err
		}
		if b == nil {
			return nil, nil, "", fmt.Errorf("loader: %s: %s not found", path, index)
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, nil, "", fmt.Errorf("loader: %s: %s: bad JSON: %v", path, index, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, nil, "", fmt.Errorf("loader: %s: %s has no weight_map", path, index)
		}
		set := map[string]bool{}
		var shards []string
		for t, f := range idx.WeightMap {
			// A shard is a plain file name in the same folder: a crafted index must not
			// reach files elsewhere ("../", absolute paths).
			if f == "" || f != filepath.Base(f) || f == "." || f == ".." || strings.ContainsAny(f, `/\`) {
				return nil, nil, "", fmt.Errorf("loader: %s: %s maps tensor %s to %s, which is not a file name in the folder", path, index, Quote(t), Quote(f))
			}
			if !set[f] {
				set[f] = true
				shards = append(shards, f)
			}
		}
		// Shard names (model-00001-of-00003.safetensors ...) sort into their intended order.
		sort.Strings(shards)
		return shards, idx.WeightMap, index, nil
	}
	if src.has(hfSingleFile) {
		return []string{hfSingleFile}, nil, "", nil
	}
	names, err := src.list()
	if err != nil {
		return nil, nil, "", err
	}
	var shards []string
	for _, n := range names {
		if strings.HasSuffix(n, safetensorsSuffix) {
			shards = append(shards, n)
		}
	}
	if len(shards) == 0 {
		return nil, nil, "", fmt.Errorf("loader: %s: no model found (no .gguf, %s, %s or other .safetensors file)", path, hfIndexFile, hfSingleFile)
	}
	sort.Strings(shards)
	return shards, nil, "", nil
}
