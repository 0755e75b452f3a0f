package quant

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/mole-llm/mole/kernels"
)

// GroupSize is the DGQ group length along the input dimension: one zero point and one
// multiplier S2 per row and 128 columns, the group of the official code and of
// kernels.GemvA8W4's tables.
const GroupSize = 128

// A8W4 is one matrix in DGQ's storage (docs/format.md, MOLE_A8W4):
// W[o,k] = S1[o] * S2[o,g] * (q[o,k] - z[o,g]), g = k/GroupSize.
type A8W4 struct {
	Rows, Cols int
	PadCols    int       // Cols rounded up to 32, the stored row width
	Groups     int       // ceil(Cols/GroupSize)
	Codes      []byte    // [Rows][PadCols/2], 32-code blocks in Q4_0 nibble order
	Group      []int8    // [Rows][Groups][2]: zero point z (0..15), multiplier S2 (1..127)
	Scale      []float32 // [Rows]: s1
}

// DGQOptions tunes QuantizeDGQ. The zero value is the algorithm of docs/algorithms.md §1.
type DGQOptions struct {
	// FullRowError makes phase 2 score a row by its exact output error d^T H d, cross-group
	// terms included, instead of the sum of its groups' errors (see docs/quant.md).
	FullRowError bool
	// Damp is the ridge added to the Gram matrix relative to its mean diagonal (0: the
	// default 0.01; see hessian).
	Damp float64
}

// Phase-1 and phase-2 grids of the official DGQ code.
const (
	phase1Steps = 20
	phase2Steps = 80
)

func phase1Ratio(i int) float64 { return 1.02 - float64(i+1)/phase1Steps*0.22 }
func phase2Ratio(i int) float64 { return 1.02 - float64(i+1)/phase2Steps*0.82 }

// QuantizeDGQ quantizes w ([rows][cols], row-major) with DGQ's two-phase grid search,
// minimising the output error on the calibration activations of st (nil: plain weight
// error). Rows are quantized in parallel on GOMAXPROCS goroutines.
func QuantizeDGQ(w []float32, rows, cols int, st *Stats, o DGQOptions) *A8W4 {
	pc := (cols + 31) / 32 * 32
	ng := (cols + GroupSize - 1) / GroupSize
	q := &A8W4{Rows: rows, Cols: cols, PadCols: pc, Groups: ng,
		Codes: make([]byte, rows*pc/2), Group: make([]int8, rows*ng*2), Scale: make([]float32, rows)}
	h := hessian(st, cols, o.Damp)
	// Diagonal blocks of H in float64, one contiguous [n][n] block per group: phase 1's
	// group error and phase 2's block-diagonal row error.
	blocks := make([][]float64, ng)
	for g := range blocks {
		a, b := g*GroupSize, min(cols, (g+1)*GroupSize)
		n := b - a
		blk := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				blk[i*n+j] = float64(h[(a+i)*cols+a+j])
			}
		}
		blocks[g] = blk
	}
	dgqRows(rows, func(r int, sc *dgqScratch) {
		if sc.d == nil {
			sc.d, sc.codes = make([]float32, cols), make([]uint8, pc)
			sc.gs, sc.gz = make([]float64, ng), make([]int, ng)
			sc.ev = make([]groupEval, ng)
			for g := range sc.ev {
				sc.ev[g].init(blocks[g])
			}
		}
		dgqRow(w[r*cols:(r+1)*cols], cols, h, blocks, o, sc)
		q.Scale[r] = sc.s1
		for g := 0; g < ng; g++ {
			q.Group[(r*ng+g)*2] = int8(sc.gz[g])
			q.Group[(r*ng+g)*2+1] = int8(sc.bestS2[g])
		}
		// Padding codes equal the last group's zero point, so padded weights are exactly 0.
		for k := cols; k < pc; k++ {
			sc.codes[k] = uint8(sc.gz[ng-1])
		}
		PackCodes(q.Codes[r*pc/2:(r+1)*pc/2], sc.codes)
	})
	return q
}

type dgqScratch struct {
	d      []float32 // weight error (FullRowError)
	codes  []uint8
	gs     []float64 // phase-1 group scales
	gz     []int     // zero points
	s2s    []int     // S2 per group of the candidate being scored
	bestS2 []int     // S2 per group of the best candidate
	ev     []groupEval
	s1     float32
}

// groupEval scores candidate quantizations of one group of a row by their output
// error e = (w - a*c)^T B (w - a*c), where c = q - z is the integer code vector, a the
// effective scale and B the group's block of X^T X:
//
//	e = w^T B w - 2a c^T (B w) + a^2 c^T B c.
//
// Successive candidates of the grid search mostly share their codes (the effective
// scale moves by a percent or less), so c^T B c and B c are updated only for the codes
// that changed: O(n) per changed code instead of O(n^2) per candidate. The result is
// the same quadratic form, evaluated in float64.
type groupEval struct {
	n        int
	b        []float64 // [n][n]
	bw       []float64 // B w
	wbw      float64
	c        []int32   // current code vector
	bc       []float64 // B c
	cbc, cbw float64
}

func (ge *groupEval) init(b []float64) {
	n := int(math.Sqrt(float64(len(b))))
	*ge = groupEval{n: n, b: b, bw: make([]float64, n), c: make([]int32, n), bc: make([]float64, n)}
}

// reset starts a new row whose group weights are w.
func (ge *groupEval) reset(w []float32) {
	n := ge.n
	ge.wbw = 0
	for i := 0; i < n; i++ {
		var s float64
		row := ge.b[i*n : (i+1)*n]
		for j, v := range w {
			s += row[j] * float64(v)
		}
		ge.bw[i] = s
		ge.wbw += float64(w[i]) * s
	}
	clear(ge.c)
	clear(ge.bc)
	ge.cbc, ge.cbw = 0, 0
}

// set moves the current code vector to c.
func (ge *groupEval) set(c []int32) {
	n := ge.n
	for k, v := range c {
		d := v - ge.c[k]
		if d == 0 {
			continue
		}
		df := float64(d)
		ge.cbc += 2*df*ge.bc[k] + df*df*ge.b[k*n+k]
		ge.cbw += df * ge.bw[k]
		col := ge.b[k*n : (k+1)*n] // B is symmetric: row k is column k
		for i, bv := range col {
			ge.bc[i] += df * bv
		}
		ge.c[k] = v
	}
}

// err is the output error of the current codes at effective scale a.
func (ge *groupEval) err(a float64) float64 {
	return max(0, ge.wbw-2*a*ge.cbw+a*a*ge.cbc)
}

func round(x float64) float64 { return math.Round(x) }

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

func dgqRow(w []float32, cols int, h []float32, blocks [][]float64, o DGQOptions, sc *dgqScratch) {
	ng := len(blocks)
	if cap(sc.s2s) < ng {
		sc.s2s, sc.bestS2 = make([]int, ng), make([]int, ng)
	}
	s2, best2 := sc.s2s[:ng], sc.bestS2[:ng]
	var amax float64
	for _, v := range w {
		amax = max(amax, math.Abs(float64(v)))
	}
	if amax == 0 {
		sc.s1 = 0
		for g := range ng {
			sc.gz[g], sc.gs[g], best2[g] = 0, 0, 1
		}
		clear(sc.codes)
		return
	}
	var cbuf [GroupSize]int32
	// Phase 1: per group, the asymmetric (scale, zero) of the clipping ratio with the
	// lowest output error.
	for g := range ng {
		a, b := g*GroupSize, min(cols, (g+1)*GroupSize)
		wg, ev, c := w[a:b], &sc.ev[g], cbuf[:b-a]
		ev.reset(wg)
		wmin, wmax := float64(wg[0]), float64(wg[0])
		for _, v := range wg {
			wmin, wmax = min(wmin, float64(v)), max(wmax, float64(v))
		}
		bestE := math.Inf(1)
		for i := range phase1Steps {
			r := phase1Ratio(i)
			lo, hi := wmin*r, wmax*r
			scale := (hi - lo) / 15
			if !(scale > 0) {
				// A constant group: any scale that reaches its value.
				scale = max(math.Abs(lo), math.Abs(hi), 1e-30) / 7
			}
			z := clampInt(int(round(-lo/scale)), 0, 15)
			for k, v := range wg {
				c[k] = int32(clampInt(int(round(float64(v)/scale))+z, 0, 15) - z)
			}
			ev.set(c)
			if e := ev.err(scale); e < bestE {
				bestE, sc.gs[g], sc.gz[g] = e, scale, z
			}
		}
	}
	// Phase 2: per row, the coarse scale s1 (and with it every group's integer S2) of the
	// ratio with the lowest row output error.
	bestE, bestS1 := math.Inf(1), 0.0
	for i := range phase2Steps {
		s1 := float64(float32(amax * phase2Ratio(i) / 127))
		var e float64
		for g := range ng {
			a, b := g*GroupSize, min(cols, (g+1)*GroupSize)
			c := cbuf[:b-a]
			var eff float64
			s2[g], eff = dgqCodes(w[a:b], c, s1, sc.gs[g], sc.gz[g])
			if o.FullRowError {
				for k, v := range c {
					sc.d[a+k] = w[a+k] - float32(eff*float64(v))
				}
				continue
			}
			ev := &sc.ev[g]
			ev.set(c)
			if e += ev.err(eff); e >= bestE {
				break
			}
		}
		if o.FullRowError {
			d := sc.d
			for k := 0; k < cols; k++ {
				if d[k] != 0 {
					e += float64(d[k]) * float64(kernels.Dot(h[k*cols:(k+1)*cols], d))
				}
			}
		}
		if e < bestE {
			bestE, bestS1 = e, s1
			copy(best2, s2)
		}
	}
	sc.s1 = float32(bestS1)
	for g := range ng {
		a, b := g*GroupSize, min(cols, (g+1)*GroupSize)
		c := cbuf[:b-a]
		dgqCodes(w[a:b], c, bestS1, sc.gs[g], sc.gz[g])
		for k, v := range c {
			sc.codes[a+k] = uint8(int(v) + sc.gz[g])
		}
	}
}

// dgqCodes quantizes one group wg for coarse scale s1: S2 = max(1, round(gs/s1)) (at most
// 127, an int8), codes clamped to [max(0, z-127/S2), min(15, z+127/S2)] so that S2*(q-z)
// fits int8. It writes c = q - z and returns S2 and the effective scale float32(s1)*S2
// (the engine multiplies float32 s1 by the exact integer S2*(q-z)).
func dgqCodes(wg []float32, c []int32, s1, gs float64, z int) (int, float64) {
	s2 := clampInt(int(round(gs/s1)), 1, 127)
	imax := 127 / s2
	lo, hi := max(0, z-imax), min(15, z+imax)
	eff := float64(float32(s1)) * float64(s2)
	inv := 1 / eff
	fz, flo, fhi := float64(z), float64(lo), float64(hi)
	for k, v := range wg {
		// q = clamp(round(w/eff) + z, lo, hi), in float64 to avoid int conversions in the
		// hot loop.
		q := max(flo, min(fhi, math.Round(float64(v)*inv)+fz))
		c[k] = int32(q - fz)
	}
	return s2, eff
}

// PackCodes packs 4-bit codes (len a multiple of 32) into dst (len/2 bytes) in GGUF
// Q4_0's order: in each 16-byte chunk, byte j holds code j (low nibble) and code j+16.
func PackCodes(dst []byte, codes []uint8) {
	for b := 0; b < len(codes)/32; b++ {
		c := codes[b*32 : b*32+32]
		for j := 0; j < 16; j++ {
			dst[b*16+j] = c[j]&15 | c[j+16]<<4
		}
	}
}

// UnpackCodes is the inverse of PackCodes.
func UnpackCodes(dst []uint8, src []byte) {
	for b := 0; b < len(src)/16; b++ {
		for j := 0; j < 16; j++ {
			v := src[b*16+j]
			dst[b*32+j], dst[b*32+j+16] = v&15, v>>4
		}
	}
}

// Dequant writes row r of q as float32 into dst (len >= Cols).
func (q *A8W4) Dequant(r int, dst []float32) {
	var codes [32]uint8
	cb := q.Codes[r*q.PadCols/2 : (r+1)*q.PadCols/2]
	for b := 0; b*32 < q.Cols; b++ {
		UnpackCodes(codes[:], cb[b*16:b*16+16])
		for j := 0; j < 32 && b*32+j < q.Cols; j++ {
			k := b*32 + j
			g := (r*q.Groups + k/GroupSize) * 2
			dst[k] = q.Scale[r] * float32(int(q.Group[g+1])*(int(codes[j])-int(q.Group[g])))
		}
	}
}

// dgqRows runs fn for every row on GOMAXPROCS goroutines, each with its own scratch.
func dgqRows(rows int, fn func(r int, sc *dgqScratch)) {
	workers := min(runtime.GOMAXPROCS(0), max(rows, 1))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := &dgqScratch{}
			for {
				r := int(next.Add(1) - 1)
				if r >= rows {
					return
				}
				fn(r, sc)
			}
		}()
	}
	wg.Wait()
}
