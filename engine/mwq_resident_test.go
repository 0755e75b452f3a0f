//go:build linux

package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mole-llm/mole/loader"
)

// pageRange is the page-aligned span of b: first page index and count (in page units of
// the address space).
func pageRange(b []byte, ps int) (first, n int) {
	p := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	first = p / ps
	return first, (p+len(b)+ps-1)/ps - first
}

// residentPages returns which pages of b's span are in the page cache (mincore).
func residentPages(t *testing.T, b []byte, ps int) map[int]bool {
	first, n := pageRange(b, ps)
	vec := make([]byte, n)
	// x/sys/unix has no Mincore wrapper on Linux; the raw call takes the page-aligned
	// start of b's span inside the mapping.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(first*ps), uintptr(n*ps), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	out := map[int]bool{}
	for i, v := range vec {
		if v&1 != 0 {
			out[first+i] = true
		}
	}
	return out
}

// dropCache evicts path's pages from the page cache (it must not be mapped anywhere).
func dropCache(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// TestMWQResidentPages shows that the width chosen at run time decides which bytes of an
// MWQ file are read. kjv-moe's experts are written as mwq24 (random bits; each plane of each
// expert a separate 18 KiB range); the file is mapped with MADV_RANDOM (no read-around) and
// evicted from the page cache, and 24 tokens are run at 2 and then, from a cold cache
// again, at 4 bits. mincore must then show, page for page, exactly the predicted
// residency: at 2 bits no page of the .mwq3/.mwq4 plane tensors, at 4 bits precisely the
// pages of the experts the router chose (and the base tensors likewise in both runs).
func TestMWQResidentPages(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and evicts a 12 MB file: not in -short")
	}
	fm := loadDefaultModel(t)
	path := filepath.Join(t.TempDir(), "kjv-mwq24.gguf")
	// Random bits: which bytes are read is the point here, not quality.
	nl, ne := fm.Config.NLayer, fm.Config.NExpert
	writeFakeMWQ(t, fm, path)
	prompt := fm.Tok.Encode("And the LORD said unto Moses, Speak unto the children of Israel", true, false)
	ps := os.Getpagesize()

	counts := map[int][2]int{} // bits -> resident pages in plane tensors, in base tensors
	for _, bits := range []int{2, 4} {
		dropCache(t, path)
		lm, err := loader.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		// No read-around: a fault reads its own page only, so residency = what was read.
		var lo, hi uintptr
		for _, tn := range lm.Tensors {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(tn.Data)))
			if lo == 0 || p < lo {
				lo = p
			}
			hi = max(hi, p+uintptr(len(tn.Data)))
		}
		lo = lo / uintptr(ps) * uintptr(ps)
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_RANDOM); errno != 0 {
			t.Fatal(errno)
		}
		// Opening read the header, and the device's readahead (often megabytes) brought
		// in much of the file with it, asynchronously: drop what is not mapped into this
		// process until nothing more arrives (pages still under I/O cannot be dropped).
		resident := -1
		for try := 0; try < 40 && resident != 0; try++ {
			dropCache(t, path)
			time.Sleep(25 * time.Millisecond)
			resident = 0
			for _, tn := range lm.Tensors {
				// Only the expert tensors matter (pages near the header may stay mapped
				// by fault-around); their edge pages are shared with neighbours.
				if strings.Contains(tn.Name, "_exps.") {
					f, n := pageRange(tn.Data, ps)
					for p := range residentPages(t, tn.Data, ps) {
						if p > f && p < f+n-1 {
							resident++
						}
					}
				}
			}
		}
		if resident != 0 {
			lm.Close()
			t.Skipf("cannot evict the file from the page cache (%d pages stay resident)", resident)
		}
		m, err := Load(lm)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.SetExpertBits([]int{bits}); got[0] != bits {
			t.Fatalf("SetExpertBits(%d) gave %v", bits, got)
		}
		used := make([]map[int]bool, nl)
		for l := range used {
			used[l] = map[int]bool{}
		}
		s := m.NewState(len(prompt))
		s.SetRouterTrace(func(l int, ex []int32, _ []float32) {
			for _, e := range ex {
				used[l][int(e)] = true
			}
		})
		for pos, tok := range prompt {
			s.Forward(tok, pos)
		}
		var planePages, basePages int
		for l := 0; l < nl; l++ {
			for _, kind := range []string{"gate", "up", "down"} {
				name := fmt.Sprintf("blk.%d.ffn_%s_exps.weight", l, kind)
				for k := 2; k <= 4; k++ {
					tn := name
					if k > 2 {
						tn = fmt.Sprintf("%s.mwq%d", name, k)
					}
					tt, _ := lm.Tensor(tn)
					res := residentPages(t, tt.Data, ps)
					// Pages wholly inside this tensor (its edge pages are shared with
					// its neighbours in the file) and, among them, those the chosen
					// experts' byte ranges cover at this width.
					first, n := pageRange(tt.Data, ps)
					per := len(tt.Data) / ne
					want := map[int]bool{}
					if k <= bits {
						for e := range used[l] {
							f, c := pageRange(tt.Data[e*per:(e+1)*per], ps)
							for p := f; p < f+c; p++ {
								want[p] = true
							}
						}
					}
					for p := first + 1; p < first+n-1; p++ {
						if res[p] != want[p] {
							t.Errorf("%d bits: %s page %d of %d: resident %v, predicted %v (experts used %v)", bits, tn, p-first, n, res[p], want[p], used[l])
						}
						if res[p] {
							if k > 2 {
								planePages++
							} else {
								basePages++
							}
						}
					}
				}
			}
		}
		counts[bits] = [2]int{planePages, basePages}
		t.Logf("%d bits: resident pages of expert tensors: %d base, %d residual planes (%d KiB)", bits, basePages, planePages, (basePages+planePages)*ps/1024)
		m.Close()
		lm.Close()
	}
	if counts[2][0] != 0 || counts[4][0] == 0 {
		t.Errorf("residual-plane pages resident: %d at 2 bits (want 0), %d at 4 bits (want > 0)", counts[2][0], counts[4][0])
	}
}
