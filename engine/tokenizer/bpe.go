package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/mole-llm/mole/loader"
)

// Byte-level BPE (GPT-2 style), as used by tokenizer.ggml.model = "gpt2" GGUF files and by tokenizer.json files whose
// model is BPE behind a ByteLevel pre-tokenizer (Qwen, Llama 3, DeepSeek, ...).
//
// Every byte of a pre-tokenized word is first mapped to a printable Unicode character (the GPT-2 bytes<->unicode
// table) because the vocabularies and merge lists are written in that alphabet. Merges are then applied by rank
// (position in the merge list), always merging the lowest-ranked adjacent pair and, among equal ranks, the leftmost
// one; that is what Hugging Face tokenizers and llama.cpp do, so the ids match theirs.

// byteToRune is the GPT-2 bytes->unicode table: printable Latin-1 bytes stand for themselves, the other 68 bytes
// (controls, space, 0x7F-0xA0, 0xAD) are given U+0100.. in increasing byte order.
var byteToRune [256]rune

// runeToByte inverts byteToRune; indexed by rune (all table runes are < 0x144), -1 where the rune is not in the table.
var runeToByte [0x144]int16

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = 0x100 + n
			n++
		}
	}
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	for b, r := range byteToRune {
		runeToByte[r] = int16(b)
	}
}

// appendBytesToUnicode appends s with every byte mapped through the GPT-2 table (the vocabulary alphabet).
func appendBytesToUnicode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = utf8.AppendRune(dst, byteToRune[s[i]])
	}
	return dst
}

// bytesToUnicode returns s spelled in the GPT-2 vocabulary alphabet, e.g. " hi\n" -> "ĠhiĊ".
func bytesToUnicode(s string) string {
	return string(appendBytesToUnicode(make([]byte, 0, 2*len(s)), s))
}

// unicodeToBytes appends the raw bytes a vocabulary token stands for. Runes outside the GPT-2 table (which occur in
// added/special tokens written in plain text, e.g. CJK in a user-defined token) are kept as their UTF-8 encoding, so
// such tokens decode to their visible text.
func unicodeToBytes(dst []byte, tok string) []byte {
	for _, r := range tok {
		if r >= 0 && int(r) < len(runeToByte) && runeToByte[r] >= 0 {
			dst = append(dst, byte(runeToByte[r]))
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

// parseMergeString splits a GGUF tokenizer.ggml.merges / tokenizer.json "a b" merge entry. The separator is the
// first space after the first byte (as llama.cpp does), so a left part that is itself a single space still works.
func parseMergeString(s string) ([2]string, bool) {
	if len(s) < 3 {
		return [2]string{}, false
	}
	k := strings.IndexByte(s[1:], ' ')
	if k < 0 {
		return [2]string{}, false
	}
	k++
	return [2]string{s[:k], s[k+1:]}, true
}

// mergesFromStrings converts "a b" merge strings (GGUF tokenizer.ggml.merges, or tokenizer.json model.merges in its
// older string form) into pairs.
func mergesFromStrings(list []string) ([][2]string, error) {
	out := make([][2]string, len(list))
	for i, s := range list {
		p, ok := parseMergeString(s)
		if !ok {
			return nil, fmt.Errorf("tokenizer: bad BPE merge %d: %s (want \"left right\")", i, loader.Quote(s))
		}
		out[i] = p
	}
	return out, nil
}

// bpeMerge is what a mergeable adjacent pair turns into.
type bpeMerge struct {
	rank int32 // position in the merge list; lower merges first
	id   int32 // token id of the concatenation
}

// byteBPE is an immutable byte-level BPE model; safe for concurrent use.
type byteBPE struct {
	vocab  map[string]int32    // token text (GPT-2 alphabet) -> id
	merges map[uint64]bpeMerge // key pairKey(left id, right id)
	byteID [256]int32          // id of each single byte's token, -1 when the vocabulary lacks it

	// ignoreMerges: when the whole word is a vocabulary token, emit it without running merges. Llama 3 style
	// tokenizers (tokenizer.json model.ignore_merges, llama.cpp pre "llama-bpe") need this: some of their tokens
	// are not reachable through the merge list.
	ignoreMerges bool

	// unk is emitted for a byte missing from the vocabulary (never happens with a real byte-level vocabulary);
	// -1 drops the byte, which is what HF tokenizers do when the model has no unk_token.
	unk int32

	skippedMerges int // merges ignored because a part or the result is not in the vocabulary
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// newByteBPE builds the model. tokens[i] is the text of id i in the GPT-2 alphabet; merges are in rank order.
// A duplicated token text maps to its last id (llama.cpp's token_to_id behaviour). Merges whose parts or result
// are not tokens cannot produce a known id and are skipped (HF refuses such files; counted in skippedMerges);
// a repeated merge keeps its first (lowest) rank.
func newByteBPE(tokens []string, merges [][2]string) (*byteBPE, error) {
	if len(tokens) == 0 {
		return nil, errors.New("tokenizer: BPE vocabulary is empty")
	}
	if len(tokens) > math.MaxInt32 || len(merges) > math.MaxInt32 {
		return nil, errors.New("tokenizer: BPE vocabulary or merge list too large")
	}
	b := &byteBPE{
		vocab:  make(map[string]int32, len(tokens)),
		merges: make(map[uint64]bpeMerge, len(merges)),
		unk:    -1,
	}
	for i, t := range tokens {
		b.vocab[t] = int32(i)
	}
	for i := range b.byteID {
		b.byteID[i] = -1
		if id, ok := b.vocab[string(byteToRune[i])]; ok {
			b.byteID[i] = id
		}
	}
	var buf []byte
	for rank, m := range merges {
		l, ok1 := b.vocab[m[0]]
		r, ok2 := b.vocab[m[1]]
		buf = append(append(buf[:0], m[0]...), m[1]...)
		id, ok3 := b.vocab[string(buf)]
		if !ok1 || !ok2 || !ok3 {
			b.skippedMerges++
			continue
		}
		k := pairKey(l, r)
		if _, dup := b.merges[k]; !dup {
			b.merges[k] = bpeMerge{rank: int32(rank), id: id}
		}
	}
	return b, nil
}

const noRank = math.MaxInt32

func (b *byteBPE) pair(l, r int32) (rank, id int32) {
	if l < 0 || r < 0 {
		return noRank, -1
	}
	if m, ok := b.merges[pairKey(l, r)]; ok {
		return m.rank, m.id
	}
	return noRank, -1
}

// shortWord is the length up to which encodeWord uses the simple quadratic loop on stack arrays; longer words
// (rare: long runs of letters or punctuation with no spaces) use the linked-list + heap version, O(n log n).
const shortWord = 64

// encodeWord appends the ids of one pre-tokenized word (raw bytes, not yet mapped to the GPT-2 alphabet).
func (b *byteBPE) encodeWord(word string, dst []int32) []int32 {
	if len(word) == 0 {
		return dst
	}
	if b.ignoreMerges {
		var tmp [4 * shortWord]byte
		mapped := appendBytesToUnicode(tmp[:0], word)
		// string(mapped) in a map index does not allocate.
		if id, ok := b.vocab[string(mapped)]; ok {
			return append(dst, id)
		}
	}
	if len(word) > shortWord {
		return b.encodeLong(word, dst)
	}
	var idsBuf [shortWord]int32
	var rankBuf, mergedBuf [shortWord]int32
	n := len(word)
	ids := idsBuf[:n]
	for i := 0; i < n; i++ {
		ids[i] = b.byteID[word[i]]
	}
	// rank[i]/merged[i] describe the pair (ids[i], ids[i+1]).
	rank, merged := rankBuf[:n-1], mergedBuf[:n-1]
	for i := 0; i+1 < n; i++ {
		rank[i], merged[i] = b.pair(ids[i], ids[i+1])
	}
	for n > 1 {
		best, bestRank := -1, int32(noRank)
		for i := 0; i < n-1; i++ {
			if rank[i] < bestRank { // strict: leftmost wins ties
				best, bestRank = i, rank[i]
			}
		}
		if best < 0 {
			break
		}
		ids[best] = merged[best]
		copy(ids[best+1:], ids[best+2:n])
		copy(rank[best:], rank[best+1:n-1])
		copy(merged[best:], merged[best+1:n-1])
		n--
		ids, rank, merged = ids[:n], rank[:n-1], merged[:n-1]
		if best > 0 {
			rank[best-1], merged[best-1] = b.pair(ids[best-1], ids[best])
		}
		if best < n-1 {
			rank[best], merged[best] = b.pair(ids[best], ids[best+1])
		}
	}
	return b.emit(ids, dst)
}

func (b *byteBPE) emit(ids []int32, dst []int32) []int32 {
	for _, id := range ids {
		if id >= 0 {
			dst = append(dst, id)
		} else if b.unk >= 0 {
			dst = append(dst, b.unk)
		}
	}
	return dst
}

// bpeCand is a candidate merge of symbols left and right, valid only while both still hold lid/rid and are adjacent.
type bpeCand struct {
	rank, left, right, lid, rid int32
}

func candLess(a, c bpeCand) bool {
	return a.rank < c.rank || (a.rank == c.rank && a.left < c.left)
}

// encodeLong is encodeWord for long words: symbols in a doubly linked list, candidate pairs in a binary min-heap
// keyed by (rank, left position). Stale candidates are detected lazily when popped.
func (b *byteBPE) encodeLong(word string, dst []int32) []int32 {
	n := len(word)
	id := make([]int32, n)
	prev := make([]int32, n)
	next := make([]int32, n)
	for i := 0; i < n; i++ {
		id[i] = b.byteID[word[i]]
		prev[i] = int32(i - 1)
		next[i] = int32(i + 1)
	}
	next[n-1] = -1
	h := make([]bpeCand, 0, n)
	push := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		rk, _ := b.pair(id[l], id[r])
		if rk == noRank {
			return
		}
		h = append(h, bpeCand{rank: rk, left: l, right: r, lid: id[l], rid: id[r]})
		for j := len(h) - 1; j > 0; { // sift up
			p := (j - 1) / 2
			if !candLess(h[j], h[p]) {
				break
			}
			h[j], h[p] = h[p], h[j]
			j = p
		}
	}
	pop := func() bpeCand {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for j := 0; ; { // sift down
			l, r, m := 2*j+1, 2*j+2, j
			if l < len(h) && candLess(h[l], h[m]) {
				m = l
			}
			if r < len(h) && candLess(h[r], h[m]) {
				m = r
			}
			if m == j {
				break
			}
			h[j], h[m] = h[m], h[j]
			j = m
		}
		return top
	}
	for i := 0; i+1 < n; i++ {
		push(int32(i), int32(i+1))
	}
	const dead = -2 // prev value of a symbol absorbed into its left neighbour
	for len(h) > 0 {
		c := pop()
		if prev[c.left] == dead || prev[c.right] == dead || next[c.left] != c.right ||
			id[c.left] != c.lid || id[c.right] != c.rid {
			continue // stale
		}
		_, mid := b.pair(c.lid, c.rid)
		id[c.left] = mid
		nr := next[c.right]
		next[c.left] = nr
		if nr >= 0 {
			prev[nr] = c.left
		}
		prev[c.right] = dead
		push(prev[c.left], c.left)
		push(c.left, nr)
	}
	for i := int32(0); i >= 0; i = next[i] {
		if id[i] >= 0 {
			dst = append(dst, id[i])
		} else if b.unk >= 0 {
			dst = append(dst, b.unk)
		}
	}
	return dst
}
