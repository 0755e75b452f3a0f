package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/mole-llm/mole/engine"
)

// KL divergence against a reference model, as llama-perplexity's --kl-divergence-base /
// --kl-divergence do: a first run of the reference (float) model saves, for every
// scored token, its log-probabilities; a second run of another model on the same text
// reports the mean KL(reference || model) and how often both rank the same token first.
//
// File format (mole's own, little-endian): the 8 bytes "MOLEKLD1", u32 vocabulary size,
// then one record per scored token: i32 target token, vocab float32 log-probabilities
// (log-softmax of the logits). float32 keeps the KL of a close quantization exact to
// well below its size; the file is large (4 bytes x vocab per token) but written once.
const kldMagic = "MOLEKLD1"

type kldWriter struct {
	f     *engine.AtomicFile
	vocab int
	buf   []byte
	lp    []float64
}

func newKLDWriter(path string, vocab int) (*kldWriter, error) {
	// Written to a temporary file renamed when complete, so a stopped run never leaves
	// a truncated base that a later comparison would misread; created before the run,
	// so that an unwritable destination fails first.
	f, err := engine.CreateAtomic(context.Background(), path)
	if err != nil {
		return nil, err
	}
	k := &kldWriter{f: f, vocab: vocab, buf: make([]byte, 4+4*vocab), lp: make([]float64, vocab)}
	f.Write([]byte(kldMagic))
	binary.Write(f, binary.LittleEndian, uint32(vocab))
	return k, nil
}

func (k *kldWriter) observe(logits []float32, target int32) {
	logSoftmax(k.lp, logits)
	binary.LittleEndian.PutUint32(k.buf, uint32(target))
	for i, v := range k.lp {
		binary.LittleEndian.PutUint32(k.buf[4+4*i:], math.Float32bits(float32(v)))
	}
	k.f.Write(k.buf)
}

func (k *kldWriter) close(ok bool) error {
	if !ok {
		k.f.Abort()
		return nil
	}
	return k.f.Commit()
}

// kldReader compares a model's logits with a saved base, token by token.
type kldReader struct {
	r      *bufio.Reader
	f      *os.File
	vocab  int
	buf    []byte
	lp     []float64
	n      int
	sum    float64
	same   int
	kls    []float64
	errMsg error
}

func newKLDReader(path string, vocab int) (*kldReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:8]) != kldMagic {
		f.Close()
		return nil, fmt.Errorf("%s: not a mole --kl-divergence-base file", path)
	}
	if v := int(binary.LittleEndian.Uint32(hdr[8:])); v != vocab {
		f.Close()
		return nil, fmt.Errorf("%s: saved for a vocabulary of %d, this model has %d", path, v, vocab)
	}
	return &kldReader{r: r, f: f, vocab: vocab, buf: make([]byte, 4+4*vocab), lp: make([]float64, vocab)}, nil
}

func (k *kldReader) observe(logits []float32, target int32) {
	if k.errMsg != nil {
		return
	}
	if _, err := io.ReadFull(k.r, k.buf); err != nil {
		k.errMsg = fmt.Errorf("the base file has only %d tokens: was it saved with the same text and -c?", k.n)
		return
	}
	if t := int32(binary.LittleEndian.Uint32(k.buf)); t != target {
		k.errMsg = fmt.Errorf("token %d differs from the base file's (%d vs %d): same text and -c?", k.n, target, t)
		return
	}
	logSoftmax(k.lp, logits)
	var kl float64
	bestB, bestM := 0, 0
	for i := 0; i < k.vocab; i++ {
		b := float64(math.Float32frombits(binary.LittleEndian.Uint32(k.buf[4+4*i:])))
		kl += math.Exp(b) * (b - k.lp[i])
		if b > float64(math.Float32frombits(binary.LittleEndian.Uint32(k.buf[4+4*bestB:]))) {
			bestB = i
		}
		if k.lp[i] > k.lp[bestM] {
			bestM = i
		}
	}
	kl = max(kl, 0)
	k.sum += kl
	k.kls = append(k.kls, kl)
	if bestB == bestM {
		k.same++
	}
	k.n++
}

// report prints llama-perplexity-style KL statistics.
func (k *kldReader) report(w io.Writer) error {
	defer k.f.Close()
	if k.errMsg != nil {
		return k.errMsg
	}
	if _, err := k.r.ReadByte(); err == nil {
		return errors.New("the base file has more tokens than this run scored: same text and -c?")
	}
	if k.n == 0 {
		return errors.New("no tokens compared")
	}
	sort.Float64s(k.kls)
	q := func(p float64) float64 { return k.kls[min(len(k.kls)-1, int(p*float64(len(k.kls))))] }
	fmt.Fprintf(w, "KL divergence: mean %.6f, median %.6f, 99th percentile %.6f, max %.6f over %d tokens\n",
		k.sum/float64(k.n), q(0.5), q(0.99), k.kls[len(k.kls)-1], k.n)
	fmt.Fprintf(w, "same top token: %.4f%% (%d of %d)\n", 100*float64(k.same)/float64(k.n), k.same, k.n)
	return nil
}

// logSoftmax writes log softmax(logits) in float64.
func logSoftmax(dst []float64, logits []float32) {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - m)
	}
	lz := m + math.Log(z)
	for i, v := range logits {
		dst[i] = float64(v) - lz
	}
}
