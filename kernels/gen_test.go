package kernels

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedAssemblyFresh reruns every avo generator listed in gen.go into a temporary
// directory and compares its output with the committed files, so that a generator edited
// without `go generate` (or a hand edit of generated assembly) cannot pass.
func TestGeneratedAssemblyFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not rerunning the assembly generators")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot rerun the generators")
	}
	f, err := os.Open("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	asmDir, err := filepath.Abs("../asm")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "//go:generate ") {
			continue
		}
		args := strings.Fields(strings.TrimPrefix(line, "//go:generate "))
		if len(args) < 6 || args[0] != "go" || args[1] != "run" || args[2] != "-C" || args[3] != "../asm" {
			t.Fatalf("gen.go: line does not have the form `go run -C ../asm ./NAME -out ... -stubs ...`: %s", line)
		}
		tmp := t.TempDir()
		var run []string
		var compare [][2]string // committed, regenerated
		for i := 4; i < len(args); i++ {
			a := args[i]
			if (a == "-out" || a == "-stubs") && i+1 < len(args) {
				committed := filepath.Join(asmDir, args[i+1])
				fresh := filepath.Join(tmp, filepath.Base(committed))
				compare = append(compare, [2]string{committed, fresh})
				run = append(run, a, fresh)
				i++
				continue
			}
			run = append(run, a)
		}
		cmd := exec.Command(gobin, append([]string{"run"}, run...)...)
		cmd.Dir = asmDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			if bytes.Contains(out, []byte("dial tcp")) || bytes.Contains(out, []byte("proxy.golang.org")) {
				t.Skipf("cannot download the generator's dependencies (offline?): %s", out)
			}
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		for _, c := range compare {
			want, err := os.ReadFile(c[0])
			if err != nil {
				t.Fatalf("committed %s: %v", c[0], err)
			}
			got, err := os.ReadFile(c[1])
			if err != nil {
				t.Fatalf("regenerated %s: %v", c[1], err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("%s is stale: run `go generate ./kernels` and commit the result", filepath.Base(c[0]))
			}
		}
		n++
	}
	if n == 0 {
		t.Log("gen.go lists no generators yet")
	}
}
