package kernels

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestUnderQemu reruns this package's tests on CPUs this machine is not, through qemu's
// user-mode emulation (apt-get install qemu-user-static; .ci/run installs it):
//   - amd64 under `-cpu Haswell` (AVX2, no AVX-512, no AVX-VNNI): the AVX2 paths must pass
//     there, and a stray EVEX or VNNI instruction on them dies with SIGILL;
//   - arm64 under `-cpu max` (NEON with SDOT) and `-cpu cortex-a72` (NEON without the
//     dot-product extension, so the widening-multiply forms run).
//
// Each run is the package's own test binary, cross-compiled, with -test.short so that the
// generator and qemu tests themselves are not repeated inside the emulator. Each GOARCH is
// built once (both arm64 runs share a binary; on a cold build cache the cross-compile of
// the standard library costs more than the emulated runs), and the three runs are
// parallel subtests: each qemu process is one busy thread, so on two cores two run at
// once (-test.parallel, GOMAXPROCS by default) and the third starts when one ends.
func TestUnderQemu(t *testing.T) {
	if os.Getenv("MOLE_UNDER_QEMU") != "" {
		t.Skip("already running under qemu")
	}
	if testing.Short() {
		t.Skip("-short: not running the package under qemu")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the qemu runs are driven from linux/amd64")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	runs := []struct {
		goarch, qemu, cpu string
		want              []string // subtests that must have run and passed
		wantNot           []string // subtests that must not have passed (paths the CPU lacks)
	}{
		{"amd64", "qemu-x86_64-static", "Haswell",
			[]string{"--- PASS: TestGemvI8Paths/avx2", "--- PASS: TestGemvA8W4Paths/avx2", "--- PASS: TestPeakLoops/avx2", "--- PASS: TestGemvMWQ/avx2",
				"--- PASS: TestGemmPaths/avx2", "--- PASS: TestGemmA8W4GPaths/avx2"},
			[]string{"--- PASS: TestGemvI8Paths/avx512", "--- PASS: TestGemvI8Paths/avxvnni", "--- PASS: TestPeakLoops/avx512", "--- PASS: TestGemvMWQ/avx512"}},
		{"arm64", "qemu-aarch64-static", "max", neonMustPass, nil},
		{"arm64", "qemu-aarch64-static", "cortex-a72", neonMustPass, nil},
	}
	// The test binaries, one per GOARCH whose emulator is installed, built before the
	// parallel runs start (a build already uses every core).
	dir := t.TempDir()
	bins := map[string]string{}
	for _, c := range runs {
		if _, done := bins[c.goarch]; done {
			continue
		}
		if _, err := exec.LookPath(c.qemu); err != nil {
			continue // its subtests skip with the message below
		}
		bin := filepath.Join(dir, "kernels-"+c.goarch+".test")
		build := exec.Command(gobin, "test", "-c", "-o", bin, ".")
		build.Env = append(os.Environ(), "GOARCH="+c.goarch, "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go test -c for %s: %v\n%s", c.goarch, err, out)
		}
		bins[c.goarch] = bin
	}
	for _, c := range runs {
		t.Run(c.goarch+"-"+c.cpu, func(t *testing.T) {
			qemu, err := exec.LookPath(c.qemu)
			if err != nil {
				t.Skipf("%s not installed (apt-get install qemu-user-static): skipped", c.qemu)
			}
			t.Parallel()
			run := exec.Command(qemu, "-cpu", c.cpu, bins[c.goarch], "-test.short", "-test.v")
			run.Env = append(os.Environ(), "MOLE_UNDER_QEMU=1", "MOLE_ISA=")
			out, err := run.CombinedOutput()
			s := string(out)
			if err != nil {
				t.Fatalf("%s under qemu -cpu %s: %v\n%s", c.goarch, c.cpu, err, tail(s, 4000))
			}
			for _, w := range c.want {
				if !strings.Contains(s, w) {
					t.Errorf("under qemu -cpu %s the output lacks %q", c.cpu, w)
				}
			}
			for _, w := range c.wantNot {
				if strings.Contains(s, w) {
					t.Errorf("under qemu -cpu %s a path the CPU lacks ran: %q", c.cpu, w)
				}
			}
			t.Logf("%s under qemu -cpu %s: %d tests passed", c.goarch, c.cpu, strings.Count(s, "--- PASS"))
		})
	}
}

// neonMustPass are the tests whose passing proves the NEON kernels ran: the exported
// kernels on the neon path against their twins, the SDOT/widening forms directly, and the
// WORD-encoded instruction macros.
var neonMustPass = []string{
	"--- PASS: TestGemvI8Paths/neon", "--- PASS: TestGemvA8W4Paths/neon",
	"--- PASS: TestNEONI8Dots", "--- PASS: TestNEONA8W4Dots", "--- PASS: TestNEONGGML",
	"--- PASS: TestNEONMacros", "--- PASS: TestNEONInt8Exported", "--- PASS: TestNEONDispatchSelected",
	"--- PASS: TestPeakLoops/neon",
	"--- PASS: TestNEONMWQDots", "--- PASS: TestNEONMWQOneBit", "--- PASS: TestMWQDotsTwin/neon", "--- PASS: TestGemvMWQ/neon",
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
