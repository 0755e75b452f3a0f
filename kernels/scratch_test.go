package kernels

import (
	"runtime"
	"testing"
)

// TestScratchPoolSurvivesGC: a buffer handed back is handed out again after garbage
// collections, so a step that took it once does not allocate it again (sync.Pool, used
// before, dropped its buffers after two collections).
func TestScratchPoolSurvivesGC(t *testing.T) {
	p := newScratchPool[byte](2)
	b := p.Get()
	*b = make([]byte, 1<<20)
	p.Put(b)
	runtime.GC()
	runtime.GC()
	if n := testing.AllocsPerRun(10, func() {
		runtime.GC()
		c := p.Get()
		if c != b || len(*c) != 1<<20 {
			t.Fatalf("got a different buffer after a collection")
		}
		p.Put(c)
	}); n != 0 {
		t.Errorf("Get/Put across collections allocates %v times", n)
	}
	// Beyond what it keeps, buffers are dropped and new ones made.
	x, y, z := p.Get(), p.Get(), p.Get()
	p.Put(x)
	p.Put(y)
	p.Put(z)
	if len(p.free) != 2 {
		t.Errorf("keeps %d buffers, want 2", len(p.free))
	}
}
