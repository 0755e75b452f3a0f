package loader

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mole-llm/mole/kernels"
)

// BenchmarkStreamRead compares the read bandwidth of the two places weights can live
// (LoadMmap: a shared file mapping; LoadCopy: anonymous memory with MADV_HUGEPAGE), by
// streaming the same bytes from both in the same run and reporting GB/s for each and
// their ratio copy/mmap. Decode speed is bound by exactly this read. The size defaults
// to 512 MiB, above the 300 MiB L3 of the development VM, so that the loop reads DRAM;
// MOLE_STREAM_MIB overrides it. The first pass over the mapping, which also takes the
// page faults that map the page cache in, is reported as mmap_first_GB/s.
func BenchmarkStreamRead(b *testing.B) {
	mib := 512
	if s := os.Getenv("MOLE_STREAM_MIB"); s != "" {
		var err error
		if mib, err = strconv.Atoi(s); err != nil || mib <= 0 {
			b.Fatalf("MOLE_STREAM_MIB=%q", s)
		}
	}
	n := mib << 20
	path := filepath.Join(b.TempDir(), "weights.bin")
	if err := writePattern(path, n); err != nil {
		b.Fatal(err)
	}
	mp, err := Map(path)
	if err != nil {
		b.Fatal(err)
	}
	defer mp.Close()

	t0 := time.Now()
	want := streamSum(mp.Data)
	first := time.Since(t0)

	region, err := allocAnon(n)
	if err != nil {
		b.Fatal(err)
	}
	defer region.close()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.ReadAt(region.data, 0); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := region.freeze(); err != nil {
		b.Fatal(err)
	}
	if got := streamSum(region.data); got != want {
		b.Fatalf("copy sums to %d, mapping to %d", got, want)
	}
	huge := smapsBytes(uintptr(unsafe.Pointer(unsafe.SliceData(region.mem))), "AnonHugePages:")
	// Recent kernels cache files in large folios and may map them with 2 MiB entries
	// too, which would erase the difference this benchmark looks for.
	filePMD := smapsBytes(uintptr(unsafe.Pointer(unsafe.SliceData(mp.Data))), "FilePmdMapped:")

	// threads=1 is one core's bandwidth (what a single-threaded decode sees); threads=2
	// splits each pass over two goroutines, closer to the machine's total. reader=go is
	// a plain Go loop; reader=dot streams the bytes as float32 rows through
	// kernels.DotF32Bytes (SIMD on amd64 unless purego), the way a decode GEMV does.
	for _, reader := range []string{"go", "dot"} {
		sum := streamSum
		if reader == "dot" {
			sum = dotSum
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("reader=%s/threads=%d", reader, threads), func(b *testing.B) {
				var tm, tc time.Duration
				b.SetBytes(int64(2 * n))
				// The two are interleaved block by block (32 MiB, a few ms each) so that
				// other processes' load, which comes and goes over tens of ms on a shared
				// machine, falls on both alike; a pass still streams the whole size.
				const block = 32 << 20
				for range b.N {
					var s1, s2 uint64
					for off := 0; off < n; off += block {
						end := min(off+block, n)
						t := time.Now()
						s1 += parallelSum(mp.Data[off:end], threads, sum)
						tm += time.Since(t)
						t = time.Now()
						s2 += parallelSum(region.data[off:end], threads, sum)
						tc += time.Since(t)
					}
					if s1 != s2 {
						b.Fatal("the copy and the mapping read differently")
					}
				}
				gbs := func(d time.Duration, passes int) float64 { return float64(n) * float64(passes) / d.Seconds() / 1e9 }
				b.ReportMetric(gbs(tm, b.N), "mmap_GB/s")
				b.ReportMetric(gbs(tc, b.N), "copy_GB/s")
				b.ReportMetric(float64(tm)/float64(tc), "copy/mmap")
				b.ReportMetric(gbs(first, 1), "mmap_first_GB/s")
				b.ReportMetric(float64(huge)/float64(n)*100, "copy_huge_%")
				b.ReportMetric(float64(filePMD)/float64(n)*100, "mmap_pmd_%")
			})
		}
	}
}

// dotX is the vector dotSum multiplies rows by: 16 KiB, resident in L1/L2, so the
// row bytes are the only stream.
var dotX = make([]float32, dotCols)

const dotCols = 4096

// dotSum reads b as float32 rows of dotCols through kernels.DotF32Bytes.
func dotSum(b []byte) uint64 {
	var acc float32
	rb := 4 * dotCols
	for off := 0; off+rb <= len(b); off += rb {
		acc += kernels.DotF32Bytes(b[off:off+rb], dotX)
	}
	return uint64(math.Float32bits(acc))
}

// parallelSum runs sum over threads equal parts of b (len(b) a multiple of 16 KiB*threads).
func parallelSum(b []byte, threads int, sum func([]byte) uint64) uint64 {
	if threads == 1 {
		return sum(b)
	}
	part := len(b) / threads
	sums := make(chan uint64, threads)
	for i := range threads {
		go func() { sums <- sum(b[i*part : (i+1)*part]) }()
	}
	var s uint64
	for range threads {
		s += <-sums
	}
	return s
}

// streamSum reads every byte of b once as uint64 words with independent accumulators,
// so the loop is bound by memory rather than by an add chain.
func streamSum(b []byte) uint64 {
	w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8)
	var s0, s1, s2, s3, s4, s5, s6, s7 uint64
	for i := 0; i+8 <= len(w); i += 8 {
		v := w[i : i+8 : i+8]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
		s4 += v[4]
		s5 += v[5]
		s6 += v[6]
		s7 += v[7]
	}
	return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
}

// writePattern writes n bytes of a non-constant pattern (so no page is a shared zero page).
func writePattern(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*131 + i>>8)
	}
	for left := n; left > 0; left -= len(buf) {
		if _, err := w.Write(buf[:min(left, len(buf))]); err != nil {
			f.Close()
			return err
		}
		buf[0]++
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// smapsBytes returns a field (in bytes) of the mapping holding addr, from
// /proc/self/smaps (0 when unknown): AnonHugePages tells how much of the copy the kernel
// really backed with huge pages, FilePmdMapped how much of a file mapping uses 2 MiB
// entries.
func smapsBytes(addr uintptr, field string) int {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		var lo, hi uintptr
		// Mapping headers start "lo-hi perms ..."; field lines ("Size:  4 kB") do not parse.
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil {
			in = addr >= lo && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				return kb << 10
			}
		}
	}
	return 0
}
