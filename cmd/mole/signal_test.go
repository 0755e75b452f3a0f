//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMainProcess is not a test: TestRunSIGINT starts the test binary again with
// MOLE_TEST_MAIN set to run mole's main in a process of its own, which a signal can stop.
func TestMainProcess(t *testing.T) {
	spec := os.Getenv("MOLE_TEST_MAIN")
	if spec == "" {
		t.Skip("only runs as the subprocess of TestRunSIGINT")
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		t.Fatal(err)
	}
	os.Args = append([]string{"mole"}, args...)
	main()
}

// TestRunSIGINT: ^C (SIGINT) during generation stops it, prints the text so far ending
// with a newline and the timing summary with stop reason "interrupted", and exits with
// status 130 without an error line.
func TestRunSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	defaultModel(t)
	// Past the trained context so that generation runs long enough to be interrupted.
	args, _ := json.Marshal([]string{"run", "-n", "-1", "-c", "100000", "--ctx-extend", "--temp", "0", "In the beginning"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), "MOLE_TEST_MAIN="+string(args))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	first, err := r.ReadByte() // generation has started: main's handler is installed
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("no output: %v; %s", err, errb.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// A process that ignores the signal would run for minutes: end it.
	kill := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer kill.Stop()
	var rb bytes.Buffer
	rb.ReadFrom(r)
	rest := rb.String()
	err = cmd.Wait()
	out := string(first) + rest
	code := cmd.ProcessState.ExitCode()
	if code != exitInterrupted {
		t.Errorf("exit status %d (%v), want %d; stderr:\n%s", code, err, exitInterrupted, errb.String())
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("stdout does not end with a newline: ...%q", tail(out, 40))
	}
	if !strings.Contains(errb.String(), "stop: interrupted") || strings.Contains(errb.String(), "canceled") {
		t.Errorf("stderr:\n%s", errb.String())
	}
}
