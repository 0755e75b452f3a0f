package kernels

// scratchPool hands out per-call scratch buffers (prepared activations, weight strips,
// A8W4 tables), so that concurrent calls from the engine's pool each get their own.
// Unlike sync.Pool, which the garbage collector empties, it keeps what it is given: with
// sync.Pool the first call after two collections allocated again, so a decode or batched
// step that must not allocate sometimes did (under load, when the runtime's periodic
// collection fell inside a step). Buffers live as long as the process; at most cap(free)
// are kept, as many as calls ever ran at once, and a buffer beyond that is dropped.
type scratchPool[T any] struct{ free chan *[]T }

func newScratchPool[T any](keep int) *scratchPool[T] {
	return &scratchPool[T]{free: make(chan *[]T, keep)}
}

// Get returns a kept buffer, or a new empty one when none is free.
func (p *scratchPool[T]) Get() *[]T {
	select {
	case b := <-p.free:
		return b
	default:
		return new([]T)
	}
}

// Put keeps b for a later Get.
func (p *scratchPool[T]) Put(b *[]T) {
	select {
	case p.free <- b:
	default:
	}
}
