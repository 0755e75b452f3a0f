package engine

import (
	"errors"
	"slices"

	"github.com/mole-llm/mole/engine/tokenizer"
	"github.com/mole-llm/mole/loader"
)

// OpenOptions says how Open and File.Bind set a model up to run.
type OpenOptions struct {
	// Load is where the weights live: LoadMmap (the zero value) or LoadCopy.
	Load LoadMode
	// Threads is the number of workers a forward pass uses; 0: GOMAXPROCS.
	Threads int
	// Budget, when set, runs the experts from a budgeted cache of their planes, as
	// Model.SetMemBudget does (MWQ GGUF files with LoadMmap only); nil: all resident.
	Budget *BudgetOptions
}

// Open opens the GGUF file or Hugging Face folder at path and binds it as a Model set up
// as o asks. The Model owns the files: its Close closes them.
func Open(path string, o OpenOptions) (*Model, error) {
	f, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	m, err := f.Bind(o)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.closeFiles = f.Close
	return m, nil
}

// File is a model's files opened but not bound: enough to describe them (their
// tensors and metadata, even for an architecture the engine cannot run) or to build
// their tokenizer, and what Bind turns into a Model.
type File struct {
	lm *loader.Model
}

// OpenFile opens a GGUF file or a Hugging Face folder. Nothing is read beyond headers:
// the tensors are views of the file's mapping.
func OpenFile(path string) (*File, error) {
	lm, err := loader.Open(path)
	if err != nil {
		return nil, err
	}
	return &File{lm: lm}, nil
}

// OpenHFFiles opens a Hugging Face folder held in memory, file name to contents (an
// embedded model), as OpenFile would open it from disk; name stands for its path in
// messages. The contents are used in place and must not change while it is open.
func OpenHFFiles(name string, files map[string][]byte) (*File, error) {
	lm, err := loader.OpenHFFiles(name, files)
	if err != nil {
		return nil, err
	}
	return &File{lm: lm}, nil
}

// Bind builds a Model over f, set up as o asks. f must stay open while the Model is in
// use and be closed after it; a failed Bind leaves f open. Bind is called at most once
// per File: the load mode moves the weights.
func (f *File) Bind(o OpenOptions) (*Model, error) {
	// Before Load: the Model's matrices are views of the tensors as they are when it
	// binds them.
	if err := f.lm.Apply(loader.OpenOptions{Load: o.Load}); err != nil {
		return nil, err
	}
	m, err := Load(f.lm)
	if err != nil {
		return nil, err
	}
	if o.Threads > 0 && o.Threads != m.Threads() {
		m.SetThreads(o.Threads)
	}
	if o.Budget != nil {
		if _, err := m.SetMemBudget(*o.Budget); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// Close closes the files; nothing bound to them may be used afterwards.
func (f *File) Close() error { return f.lm.Close() }

// Path is the path the files were opened from (the name given to OpenHFFiles).
func (f *File) Path() string { return f.lm.Path }

// Format is "gguf" or "safetensors".
func (f *File) Format() string { return f.lm.Format }

// LoadMode is where the tensors live now: LoadCopy after a Bind with LoadCopy, else
// LoadMmap (which includes in-memory files, used in place).
func (f *File) LoadMode() LoadMode { return f.lm.LoadMode() }

// Architecture is a GGUF file's general.architecture ("" for other files).
func (f *File) Architecture() string {
	if f.lm.GGUF == nil {
		return ""
	}
	return f.lm.GGUF.Architecture()
}

// MetaString is a GGUF file's string metadata value for key (false when absent, or not
// a GGUF file).
func (f *File) MetaString(key string) (string, bool) {
	if f.lm.GGUF == nil {
		return "", false
	}
	return f.lm.GGUF.String(key)
}

// MetaUint is a GGUF file's unsigned integer metadata value for key (false when absent,
// or not a GGUF file).
func (f *File) MetaUint(key string) (uint64, bool) {
	if f.lm.GGUF == nil {
		return 0, false
	}
	return f.lm.GGUF.Uint(key)
}

// TensorInfo describes one tensor of a File.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int // outermost first
	Bytes int64 // the tensor's size in the file
}

// Elems is the number of elements of the tensor.
func (t TensorInfo) Elems() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Tensors lists the tensors in file order (shards in index order).
func (f *File) Tensors() []TensorInfo {
	ts := make([]TensorInfo, len(f.lm.Tensors))
	for i, t := range f.lm.Tensors {
		ts[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: slices.Clone(t.Shape), Bytes: int64(len(t.Data))}
	}
	return ts
}

// Tokenizer builds only the tokenizer of the files, which works even for architectures
// the engine cannot run. Unlike Bind, it fails when the files carry none.
func (f *File) Tokenizer() (*tokenizer.Tokenizer, error) {
	switch {
	case f.lm.GGUF != nil:
		return tokenizer.FromGGUF(f.lm.GGUF)
	case f.lm.HF != nil:
		return tokenizer.FromHF(f.lm.HF)
	}
	return nil, errors.New("no tokenizer")
}
