package sched

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mole-llm/mole/loader"
)

// Profile is what `mole profile` measures on a device for one model (D²MoE's offline
// step): the time to bring one expert plane into memory by each backend (T_io, per plane
// size) and the time to compute one expert for one token at each width (T_comp). It is
// stored beside the model as MODEL.profile.json.
type Profile struct {
	Model   string      `json:"model"`
	Created string      `json:"created"`
	IO      []IOPoint   `json:"io"`
	Comp    []CompPoint `json:"comp"`
}

// IOPoint is the median time to load one expert plane (gate, up and down) of Bytes bytes,
// cold (evicted from the page cache first), by Backend ("pread", "pread-buffered" or
// "mmap"), over Samples planes.
type IOPoint struct {
	Backend string  `json:"backend"`
	Level   int     `json:"level"` // 0: the base, k: plane base+k
	Bytes   int64   `json:"bytes"`
	Micros  float64 `json:"us"`
	MBps    float64 `json:"mb_per_s"`
	Samples int     `json:"samples"`
}

// CompPoint is the time to compute one expert (gate, up, silu, down) for one token at Bits.
type CompPoint struct {
	Bits   int     `json:"bits"`
	Micros float64 `json:"us"`
}

// ProfilePath is where the profile of the model at path is stored.
func ProfilePath(model string) string { return model + ".profile.json" }

// ReadProfile reads a profile written by WriteProfile.
func ReadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// WriteProfile writes p to path atomically (loader.WriteFileAtomic).
func WriteProfile(path string, p *Profile) error {
	return loader.WriteFileAtomic(path, func(w io.Writer) error { return EncodeProfile(w, p) })
}

// EncodeProfile writes p as WriteProfile does, to w (mole profile creates its output
// file before measuring).
func EncodeProfile(w io.Writer, p *Profile) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// IOTime is the profiled time to load a plane of level k by backend (0 when unknown).
func (p *Profile) IOTime(b Backend, k int) time.Duration {
	for _, q := range p.IO {
		if q.Backend == b.String() && q.Level == k {
			return time.Duration(q.Micros * 1e3)
		}
	}
	return 0
}

// PreferredBackend is the backend that loads a base plus a plane faster on this device
// (Pread when the profile lacks either).
func (p *Profile) PreferredBackend() Backend {
	pr := p.IOTime(Pread, 0) + p.IOTime(Pread, 1)
	mm := p.IOTime(Mmap, 0) + p.IOTime(Mmap, 1)
	if pr > 0 && mm > 0 && mm < pr {
		return Mmap
	}
	return Pread
}
