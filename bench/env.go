package bench

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/mole-llm/mole/kernels"
)

// Env describes where a run happened, for the JSON report.
type Env struct {
	CPU        string `json:"cpu_info"`
	Cores      int    `json:"cpu_cores"` // logical CPUs the OS reports
	GOMAXPROCS int    `json:"gomaxprocs"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	ISA        string `json:"isa"` // the kernel path chosen at start-up
	GoVersion  string `json:"go_version"`
	Commit     string `json:"build_commit"`
	Time       string `json:"test_time"`
}

// CurrentEnv fills an Env for this process.
func CurrentEnv() Env {
	name := strings.TrimSpace(cpuid.CPU.BrandName)
	if name == "" {
		name = "unknown " + runtime.GOARCH + " CPU"
	}
	return Env{
		CPU: name, Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS: runtime.GOOS, Arch: runtime.GOARCH, ISA: kernels.Active().String(),
		GoVersion: runtime.Version(), Commit: Commit(),
		Time: time.Now().UTC().Format(time.RFC3339),
	}
}

// Commit is the VCS revision the binary was built from: the one `go build` stamps into
// the build info, else (go run and go test do not stamp it) `git rev-parse HEAD` in the
// working directory, else "unknown". A "-dirty" suffix marks uncommitted changes.
func Commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			return short(rev) + dirty
		}
	}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if rev := strings.TrimSpace(string(out)); rev != "" {
			if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
				return short(rev) + "-dirty"
			}
			return short(rev)
		}
	}
	return "unknown"
}

// short keeps the 12 hex digits llama-bench-style reports show.
func short(rev string) string { return rev[:min(12, len(rev))] }

// PeakRSS returns the process's peak resident set (VmHWM) in bytes, or 0 where /proc
// does not say.
func PeakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// ResetPeakRSS restarts the peak at the current RSS (Linux: writing 5 to clear_refs), so
// each model's peak leaves out the bandwidth buffer and the models measured before it.
// It reports whether the reset worked.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
