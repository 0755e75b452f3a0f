//go:build unix

package sched

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

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

// sinkByte keeps the page-touching reads of MeasureIO observable.
//
//lint:ignore U1000 written, never read, on purpose
var sinkByte byte
