package loader

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"unsafe"
)

// snapshot copies every tensor's bytes, to compare after CopyToAnon.
func snapshot(m *Model) map[string][]byte {
	s := map[string][]byte{}
	for _, t := range m.Tensors {
		s[t.Name] = bytes.Clone(t.Data)
	}
	return s
}

// checkCopied checks what CopyToAnon promises: equal bytes, every non-empty view inside
// the anonymous region (with its address modulo 32 kept, the GGUF alignment), no file
// mappings left, and a read-only region.
func checkCopied(t *testing.T, m *Model, want map[string][]byte, oldAddr map[string]uintptr) {
	t.Helper()
	if m.LoadMode() != LoadCopy || m.mappings != nil {
		t.Fatalf("after CopyToAnon: mode %v, %d mappings", m.LoadMode(), len(m.mappings))
	}
	n, _ := m.AnonInfo()
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(m.anon.data)))
	hi := lo + uintptr(n)
	if lo%hugePageSize != 0 {
		t.Errorf("region starts at %#x, not on a huge-page boundary", lo)
	}
	for _, tt := range m.Tensors {
		if !bytes.Equal(tt.Data, want[tt.Name]) {
			t.Errorf("%s: bytes differ after the copy", tt.Name)
		}
		if len(tt.Data) == 0 {
			continue
		}
		a := uintptr(unsafe.Pointer(unsafe.SliceData(tt.Data)))
		if a < lo || a+uintptr(len(tt.Data)) > hi {
			t.Errorf("%s: view at %#x is outside the region [%#x, %#x)", tt.Name, a, lo, hi)
		}
		if cap(tt.Data) != len(tt.Data) {
			t.Errorf("%s: cap %d > len %d lets an append write into a neighbour", tt.Name, cap(tt.Data), len(tt.Data))
		}
		if a%32 != oldAddr[tt.Name]%32 {
			t.Errorf("%s: address mod 32 went from %d to %d", tt.Name, oldAddr[tt.Name]%32, a%32)
		}
	}
	// The region is read-only: a write faults (recovered as a panic here).
	for _, tt := range m.Tensors {
		if len(tt.Data) > 0 {
			if !faults(func() { tt.Data[0]++ }) {
				t.Errorf("%s: writing to the copied weights did not fault", tt.Name)
			}
			break
		}
	}
}

func addrs(m *Model) map[string]uintptr {
	a := map[string]uintptr{}
	for _, t := range m.Tensors {
		a[t.Name] = uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))
	}
	return a
}

// faults reports whether f hit a memory fault.
func faults(f func()) (faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() { faulted = recover() != nil }()
	f()
	return false
}

// mapped reports whether address a is in one of this process's mappings.
func mapped(t *testing.T, a uintptr) bool {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && a >= lo && a < hi {
			return true
		}
	}
	return false
}

func TestCopyToAnonGGUF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, buildGGUF(t), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want, old := snapshot(m), addrs(m)
	if err := m.CopyToAnon(); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, m, want, old)
	// Metadata was parsed into Go values and survives the unmapping of the file.
	if m.GGUF.Architecture() != "llama" {
		t.Error("metadata lost after the copy")
	}
	if err := m.CopyToAnon(); err != nil { // a second call does nothing
		t.Fatal(err)
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m.anon.data)))
	if !mapped(t, base) {
		t.Fatal("region not in /proc/self/maps while open")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.anon != nil || mapped(t, base) {
		t.Error("Close left the region mapped")
	}
}

// stTensors is testTensors without the GGUF-only block types.
func stTensors() []*Tensor {
	var ts []*Tensor
	for _, tt := range testTensors() {
		if tt.dt == F32 || tt.dt == F16 || tt.dt == BF16 {
			ts = append(ts, &Tensor{Name: tt.name, Shape: tt.shape, DType: tt.dt, Data: tt.data})
		}
	}
	return ts
}

func TestCopyToAnonSafetensorsShards(t *testing.T) {
	dir := t.TempDir()
	var a, b []*Tensor
	for i, x := range stTensors() {
		if i%2 == 0 {
			a = append(a, x)
		} else {
			b = append(b, x)
		}
	}
	if err := WriteSafetensors(filepath.Join(dir, "model-00001-of-00002.safetensors"), a, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensors(filepath.Join(dir, "model-00002-of-00002.safetensors"), b, nil); err != nil {
		t.Fatal(err)
	}
	m, err := OpenWith(dir, OpenOptions{Load: LoadMmap})
	if err != nil {
		t.Fatal(err)
	}
	if m.LoadMode() != LoadMmap || len(m.mappings) != 2 {
		t.Fatalf("mmap: mode %v, %d mappings", m.LoadMode(), len(m.mappings))
	}
	want, old := snapshot(m), addrs(m)
	m.Close()

	m, err = OpenWith(dir, OpenOptions{Load: LoadCopy})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Addresses of a fresh mapping are page aligned like the old ones, so mod 32 holds.
	checkCopied(t, m, want, old)
}

func TestCopyToAnonInMemory(t *testing.T) {
	st, err := SafetensorsBytes(stTensors(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenHFFiles("mem", map[string][]byte{"model.safetensors": st, "config.json": []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	want, old := snapshot(m), addrs(m)
	if err := m.Apply(OpenOptions{Load: LoadCopy}); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, m, want, old)
	// The caller's slice is untouched and no longer referenced.
	for _, tt := range m.Tensors {
		if len(tt.Data) > 0 && &tt.Data[0] == &st[len(st)-1] {
			t.Fatal("a view still points into the in-memory file")
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseLoadMode(t *testing.T) {
	for s, want := range map[string]LoadMode{"mmap": LoadMmap, "copy": LoadCopy, " COPY ": LoadCopy} {
		if got, err := ParseLoadMode(s); err != nil || got != want {
			t.Errorf("ParseLoadMode(%q) = %v, %v", s, got, err)
		}
		if got, _ := ParseLoadMode(want.String()); got != want {
			t.Errorf("%v does not round-trip", want)
		}
	}
	if _, err := ParseLoadMode("hugetlb"); err == nil || !strings.Contains(err.Error(), "mmap or copy") {
		t.Errorf("bad mode: %v", err)
	}
}
