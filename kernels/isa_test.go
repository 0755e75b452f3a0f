package kernels

import (
	"strings"
	"testing"
)

func TestParseISA(t *testing.T) {
	for i := Generic; i < numISA; i++ {
		got, err := ParseISA(strings.ToUpper(i.String()))
		if err != nil || got != i {
			t.Errorf("ParseISA(%q) = %v, %v", i, got, err)
		}
	}
	if _, err := ParseISA("sse9"); err == nil {
		t.Error("ParseISA accepted an unknown name")
	}
}

func TestChooseISA(t *testing.T) {
	saved := ISAWarning
	defer func() { ISAWarning = saved }()
	ISAWarning = ""
	if got := chooseISA("generic"); got != Generic || ISAWarning != "" {
		t.Errorf("MOLE_ISA=generic chose %v (warning %q)", got, ISAWarning)
	}
	if got := chooseISA("bogus"); got != best() || !strings.Contains(ISAWarning, "bogus") {
		t.Errorf("MOLE_ISA=bogus chose %v, warning %q", got, ISAWarning)
	}
	for i := Generic; i < numISA; i++ {
		ISAWarning = ""
		got := chooseISA(i.String())
		if Supported(i) && (got != i || ISAWarning != "") {
			t.Errorf("MOLE_ISA=%s chose %v, warning %q", i, got, ISAWarning)
		}
		if !Supported(i) && (got != best() || ISAWarning == "") {
			t.Errorf("MOLE_ISA=%s on a CPU without it chose %v with warning %q", i, got, ISAWarning)
		}
	}
}

func TestSetISA(t *testing.T) {
	prev, err := SetISA(Generic)
	if err != nil || Active() != Generic {
		t.Fatalf("SetISA(Generic): %v", err)
	}
	defer SetISA(prev)
	for i := Generic; i < numISA; i++ {
		if _, err := SetISA(i); (err == nil) != Supported(i) {
			t.Errorf("SetISA(%s) error %v, supported %v", i, err, Supported(i))
		}
	}
	if !strings.Contains(CPUInfo(), "chosen:") {
		t.Error("CPUInfo lacks the chosen path")
	}
}
