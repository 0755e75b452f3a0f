package engine

import (
	"io"

	"github.com/mole-llm/mole/sched"
)

// The memory budget (Model.SetMemBudget) under engine's names: a program choosing a
// budget, a cache policy and how planes are read imports engine alone. The types are
// sched's, aliased, because their values pass through engine unchanged (to the cache, and
// to bench's budget benchmark).

// BudgetOptions configures Model.SetMemBudget: the budget in bytes, the cache policy, the
// I/O backend, a forced width and the device profile.
type BudgetOptions = sched.Options

// CachePolicy decides the order of expert-plane loads and what to evict.
type CachePolicy = sched.Policy

// The cache policies (ParseCachePolicy names them hebf, fcfs and lru4).
const (
	HEBF      = sched.HEBF
	FirstCome = sched.FirstCome
	LRU       = sched.LRU
)

// ParseCachePolicy maps "hebf", "fcfs" or "lru4" (as given to --cache-policy) to a policy.
func ParseCachePolicy(s string) (CachePolicy, error) { return sched.ParsePolicy(s) }

// CacheIO is how an expert plane gets from the file into memory.
type CacheIO = sched.Backend

// The I/O backends (ParseCacheIO names them pread and mmap).
const (
	CachePread = sched.Pread
	CacheMmap  = sched.Mmap
)

// ParseCacheIO maps "pread" (or "") or "mmap" (as given to --cache-io) to a CacheIO.
func ParseCacheIO(s string) (CacheIO, error) { return sched.ParseBackend(s) }

// ExpertCache is a budgeted model's cache of expert planes (Model.MemBudget).
type ExpertCache = sched.Cache

// ExpertLayoutInfo is where a model's MWQ expert planes lie in its file
// (Model.ExpertLayout).
type ExpertLayoutInfo = sched.Layout

// ParseSize reads a byte size as --mem-budget takes it: a number with an optional binary
// suffix K, M, G or T, e.g. 512M, 1.5G, 3000000.
func ParseSize(s string) (int64, error) { return sched.ParseSize(s) }

// FormatSize writes n bytes in MiB or GiB, as the CLI reports sizes.
func FormatSize(n int64) string { return sched.FormatSize(n) }

// AvailableMemory is the memory the kernel reports as available for new allocations
// without swapping, the basis of a default budget.
func AvailableMemory() (int64, error) { return sched.AvailableMemory() }

// DeviceProfile is what mole profile measures on a device: expert-plane load times and
// expert compute times, which the budget's widths are chosen by.
type DeviceProfile = sched.Profile

// ComputePoint is one measured expert compute time (DeviceProfile.Comp).
type ComputePoint = sched.CompPoint

// IOPoint is one measured expert-plane load time (DeviceProfile.IO).
type IOPoint = sched.IOPoint

// ProfilePath is where the device profile of the model file at path is kept.
func ProfilePath(path string) string { return sched.ProfilePath(path) }

// ReadProfile reads a device profile; it fails when there is none.
func ReadProfile(path string) (*DeviceProfile, error) { return sched.ReadProfile(path) }

// MeasureIO times cold loads of samples expert planes of lay by every I/O backend.
func MeasureIO(lay *ExpertLayoutInfo, samples int) ([]IOPoint, error) {
	return sched.MeasureIO(lay, samples)
}

// EncodeProfile writes p as JSON.
func EncodeProfile(w io.Writer, p *DeviceProfile) error { return sched.EncodeProfile(w, p) }
