package sched

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"

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

// MeasureIO times loads of samples random expert planes of each level, cold, by pread
// with O_DIRECT (when the file system allows it), by buffered pread followed by
// posix_fadvise(DONTNEED), and by madvise(WILLNEED) on the mapping followed by reading one
// byte per page (the compute would fault the rest in anyway). Levels above 1 have the size
// of level 1 and are not measured separately.
func MeasureIO(lay *Layout, samples int) ([]IOPoint, error) {
	f, err := os.Open(lay.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fd := int(f.Fd())
	var dfd = -1
	if df, err := openDirect(lay.Path); err == nil {
		defer df.Close()
		dfd = int(df.Fd())
	}
	ps := int64(os.Getpagesize())
	r := rand.New(rand.NewPCG(1, 1))
	var out []IOPoint
	for k := 0; k < min(2, lay.Levels()); k++ {
		u0 := &lay.Units[0][0][k]
		size := int64(u0.Len[0] + u0.Len[1] + u0.Len[2])
		bufLen := 3 * (roundUp(int64(u0.Len[0]), align) + align)
		buf, err := unix.Mmap(-1, 0, int(bufLen), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, err
		}
		pick := make([]*Unit, samples)
		for i := range pick {
			pick[i] = &lay.Units[r.IntN(lay.NLayer)][r.IntN(lay.NExpert)][k]
		}
		drop := func(u *Unit) {
			for p := range 3 {
				madviseSpan(u.View[p], ps, unix.MADV_DONTNEED)
				dropCached(fd, u.Off[p], int64(u.Len[p]))
			}
		}
		type method struct {
			name string
			load func(u *Unit) error
		}
		methods := []method{
			{"pread-buffered", func(u *Unit) error {
				for p := range 3 {
					if err := readFull(fd, buf[:u.Len[p]], u.Off[p], int64(u.Len[p])); err != nil {
						return err
					}
					dropCached(fd, u.Off[p], int64(u.Len[p]))
				}
				return nil
			}},
			{"mmap", func(u *Unit) error {
				var sink byte
				for p := range 3 {
					if err := madviseSpan(u.View[p], ps, unix.MADV_WILLNEED); err != nil {
						return err
					}
					v := u.View[p]
					for i := 0; i < len(v); i += int(ps) {
						sink += v[i]
					}
				}
				sinkByte = sink
				return nil
			}},
		}
		if dfd >= 0 {
			methods = append([]method{{"pread", func(u *Unit) error {
				for p := range 3 {
					ao := u.Off[p] &^ (align - 1)
					end := roundUp(u.Off[p]+int64(u.Len[p]), align)
					if err := readFull(dfd, buf[:end-ao], ao, u.Off[p]-ao+int64(u.Len[p])); err != nil {
						return err
					}
				}
				return nil
			}}}, methods...)
		}
		for _, m := range methods {
			ts := make([]float64, 0, samples)
			for _, u := range pick {
				drop(u)
				t0 := time.Now()
				if err := m.load(u); err != nil {
					unix.Munmap(buf)
					return nil, fmt.Errorf("%s: %w", m.name, err)
				}
				ts = append(ts, float64(time.Since(t0).Nanoseconds())/1e3)
				drop(u)
			}
			sort.Float64s(ts)
			med := ts[len(ts)/2]
			out = append(out, IOPoint{Backend: m.name, Level: k, Bytes: size, Micros: med, MBps: float64(size) / med, Samples: samples})
		}
		unix.Munmap(buf)
	}
	return out, nil
}

var sinkByte byte
