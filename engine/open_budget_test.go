//go:build linux

package engine

import "testing"

// TestOpenBudget: OpenOptions.Budget runs the experts from the plane cache with the same
// logits as the file run resident at the forced width, and a budget the file cannot take
// (weights copied to memory) fails Open.
func TestOpenBudget(t *testing.T) {
	path := fakeMWQPath(t)
	ref := loadModelFile(t, path)
	ref.SetExpertBits([]int{2})
	_, want := greedyLogits(t, ref, 8)
	budget, _ := budgetFor(t, ref, 0.3)

	m, err := Open(path, OpenOptions{Budget: &BudgetOptions{Budget: budget, Bits: 2, Policy: HEBF, Backend: CachePread}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.MemBudget() == nil {
		t.Fatal("Open with a budget gave a model without one")
	}
	_, got := greedyLogits(t, m, 8)
	sameLogits(t, "budgeted Open", got, want)

	if m, err := Open(path, OpenOptions{Load: LoadCopy, Budget: &BudgetOptions{Budget: budget}}); err == nil {
		m.Close()
		t.Error("a budget over weights copied to memory was accepted")
	}
}
