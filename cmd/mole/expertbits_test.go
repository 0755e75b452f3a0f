package main

import (
	"slices"
	"testing"
)

func TestParseExpertBits(t *testing.T) {
	for _, c := range []struct {
		spec string
		want []int
	}{
		{"4", []int{4, 4, 4, 4}},
		{"0-1:4,2-3:2", []int{4, 4, 2, 2}},
		{"3:3", []int{0, 0, 0, 3}},
		{" 1 : 2 , 0:4", []int{4, 2, 0, 0}},
	} {
		got, err := parseExpertBits(c.spec, 4)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseExpertBits(%q) = %v, %v; want %v", c.spec, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0", "x", "0-4:2", "2-1:3", "1:", ":3", "1:0", "a-b:2"} {
		if got, err := parseExpertBits(bad, 4); err == nil {
			t.Errorf("parseExpertBits(%q) = %v, want an error", bad, got)
		}
	}
}

// TestExpertBitsNonMWQ: the flag is refused, with a reason, on a model without MWQ experts.
func TestExpertBitsNonMWQ(t *testing.T) {
	lm, err := loadModel("", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	if _, err := applyExpertBits(lm.model, "4"); err == nil {
		t.Error("--expert-bits accepted on a float model")
	}
	if d, err := applyExpertBits(lm.model, ""); err != nil || d != "" {
		t.Errorf("no flag: %q, %v", d, err)
	}
}
