package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// SentencePiece encoding (BPE and Unigram) and piece decoding.
//
// BPE follows SentencePiece's bpe_model: the normalised text is split into
// characters, adjacent pairs whose concatenation is a vocabulary piece go
// into a max-heap keyed by that piece's score (ties: leftmost pair first),
// and the best pair is merged until no pair is left. Symbols form a doubly
// linked list and stale heap entries are detected by length, so a text of n
// characters costs O(n log n) rather than the O(n^2) of rescanning all pairs
// after every merge. Pieces that exist but are UNUSED are split back through
// the pair that produced them (resegmentation), and characters that are not
// in the vocabulary become <0xNN> byte tokens (byte_fallback) or <unk>.

const spaceMark = "\u2581" // SentencePiece's visible space "▁"

// normalizeSPM applies the NormalizerSpec options mole supports:
// remove_extra_whitespaces, the dummy prefix and whitespace escaping.
func (t *Tokenizer) normalizeSPM(text string, prefix bool) string {
	if t.collapseWS {
		// SentencePiece strips leading/trailing spaces and squeezes runs.
		var sb strings.Builder
		space := false
		for i := 0; i < len(text); i++ {
			c := text[i]
			if c == ' ' {
				space = sb.Len() > 0
				continue
			}
			if space {
				sb.WriteByte(' ')
				space = false
			}
			sb.WriteByte(c)
		}
		text = sb.String()
		if text == "" {
			return ""
		}
	}
	if prefix && t.addPrefix {
		text = " " + text
	}
	if t.escapeWS {
		text = strings.ReplaceAll(text, " ", spaceMark)
	}
	return text
}

// encodeSPM encodes one raw-text fragment (no special tokens inside).
func (t *Tokenizer) encodeSPM(frag string, prefix bool, out []int32) []int32 {
	s := t.normalizeSPM(frag, prefix)
	if s == "" {
		return out
	}
	if t.unigram {
		return t.encodeUnigram(s, out)
	}
	return t.encodeSPMBPE(s, out)
}

type spSymbol struct {
	prev, next int32 // linked list over live symbols, -1 at the ends
	start, n   int32 // byte span in the normalised text; n == 0 once merged away
	freeze     bool  // a user-defined piece: never merged with neighbours
}

type spBigram struct {
	left, right int32
	size        int32 // combined length when queued; a mismatch marks the entry stale
	score       float32
}

// bigramHeap is a max-heap on score, then on smallest left index.
type bigramHeap []spBigram

func (h bigramHeap) less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].left < h[j].left
}

func (h *bigramHeap) push(b spBigram) {
	*h = append(*h, b)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *bigramHeap) pop() spBigram {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

type spmSession struct {
	t       *Tokenizer
	text    string
	syms    []spSymbol
	heap    bigramHeap
	revMerg map[string][2]string // UNUSED pieces -> the pair that formed them
	out     []int32
	lastUnk bool
}

func (t *Tokenizer) encodeSPMBPE(s string, out []int32) []int32 {
	ss := &spmSession{t: t, out: out}
	if !t.splitWS {
		ss.encode(s)
		return ss.out
	}
	// No piece can contain "x▁" (x not ▁), so no merge ever crosses the
	// start of a word: encode word by word with small heaps. The result is
	// identical to encoding the whole text at once, only faster.
	start := 0
	for i := 1; i < len(s); i++ {
		if strings.HasPrefix(s[i:], spaceMark) && !strings.HasSuffix(s[:i], spaceMark) {
			ss.encode(s[start:i])
			start = i
			i += len(spaceMark) - 1
		}
	}
	ss.encode(s[start:])
	return ss.out
}

// encode runs the merge loop over one chunk and appends its ids.
func (ss *spmSession) encode(s string) {
	t := ss.t
	ss.text = s
	ss.syms = ss.syms[:0]
	ss.heap = ss.heap[:0]
	// One symbol per UTF-8 character (an invalid byte is its own symbol),
	// except that user-defined pieces are single frozen symbols.
	for i := 0; i < len(s); {
		size, freeze := t.userDefinedAt(s, i)
		if !freeze {
			_, size = utf8.DecodeRuneInString(s[i:])
		}
		ss.syms = append(ss.syms, spSymbol{
			prev: int32(len(ss.syms)) - 1, next: int32(len(ss.syms)) + 1,
			start: int32(i), n: int32(size), freeze: freeze,
		})
		i += size
	}
	if len(ss.syms) == 0 {
		return
	}
	ss.syms[len(ss.syms)-1].next = -1
	for i := 1; i < len(ss.syms); i++ {
		ss.tryPair(int32(i-1), int32(i))
	}
	for len(ss.heap) > 0 {
		b := ss.heap.pop()
		l, r := &ss.syms[b.left], &ss.syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue // one side already merged into something else
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			ss.syms[r.next].prev = b.left
		}
		ss.tryPair(l.prev, b.left)
		ss.tryPair(b.left, l.next)
	}
	for i := int32(0); i >= 0; i = ss.syms[i].next {
		sym := ss.syms[i]
		ss.resegment(s[sym.start : sym.start+sym.n])
	}
}

// canSplitWords reports whether no vocabulary piece has U+2581 after a
// character other than U+2581, i.e. whether words can be encoded apart.
func (t *Tokenizer) canSplitWords() bool {
	if !t.escapeWS {
		return false
	}
	for piece := range t.pieceID {
		for k := 1; k < len(piece); k++ {
			if strings.HasPrefix(piece[k:], spaceMark) && !strings.HasSuffix(piece[:k], spaceMark) {
				return false
			}
		}
	}
	return true
}

// userDefinedAt returns the length of the longest user-defined piece that
// starts at s[i:], matched in normalised form (spaces already escaped).
func (t *Tokenizer) userDefinedAt(s string, i int) (int, bool) {
	for _, id := range t.userDefined[s[i]] {
		if tok := t.tokens[id]; strings.HasPrefix(s[i:], tok) {
			return len(tok), true
		}
	}
	return 0, false
}

func (ss *spmSession) tryPair(left, right int32) {
	if left < 0 || right < 0 {
		return
	}
	l, r := ss.syms[left], ss.syms[right]
	if l.freeze || r.freeze {
		return
	}
	piece := ss.text[l.start : r.start+r.n]
	id, ok := ss.t.pieceID[piece]
	if !ok {
		return
	}
	if ss.t.types[id] == typeUnused {
		if ss.revMerg == nil {
			ss.revMerg = map[string][2]string{}
		}
		ss.revMerg[piece] = [2]string{ss.text[l.start : l.start+l.n], ss.text[r.start : r.start+r.n]}
	}
	ss.heap.push(spBigram{left: left, right: right, size: l.n + r.n, score: ss.t.score(id)})
}

func (t *Tokenizer) score(id int32) float32 {
	if t.scores == nil {
		return 0
	}
	return t.scores[id]
}

func (ss *spmSession) resegment(piece string) {
	if id, ok := ss.t.pieceID[piece]; ok && ss.t.types[id] != typeUnused {
		ss.out = append(ss.out, id)
		ss.lastUnk = false
		return
	}
	if pair, ok := ss.revMerg[piece]; ok {
		ss.resegment(pair[0])
		ss.resegment(pair[1])
		return
	}
	ss.out, ss.lastUnk = ss.t.unknown(piece, ss.out, ss.lastUnk)
}

// unknown encodes a piece that is not in the vocabulary: as byte tokens with
// byte_fallback, otherwise as <unk> (consecutive unknowns share one <unk>, as
// in SentencePiece).
func (t *Tokenizer) unknown(piece string, out []int32, lastUnk bool) ([]int32, bool) {
	if t.byteFallback {
		for i := 0; i < len(piece); i++ {
			if id := t.byteID[piece[i]]; id >= 0 {
				out = append(out, id)
			} else if t.unk >= 0 {
				out = append(out, t.unk)
			}
		}
		return out, false
	}
	if t.unk >= 0 && !lastUnk {
		out = append(out, t.unk)
	}
	return out, true
}

// encodeUnigram finds the segmentation with the highest total score (Viterbi
// over the lattice of vocabulary pieces), as SentencePiece's unigram model.
// Characters no piece covers get the <unk> score min_score-10.
func (t *Tokenizer) encodeUnigram(s string, out []int32) []int32 {
	const unkPenalty = 10
	n := len(s)
	type node struct {
		score float64
		from  int32 // start of the best piece ending here, -1 unreachable
		id    int32 // -1 for an unknown character
	}
	best := make([]node, n+1)
	for i := 1; i <= n; i++ {
		best[i].from = -1
	}
	unkScore := float64(t.minScore) - unkPenalty
	for i := 0; i < n; {
		_, csize := utf8.DecodeRuneInString(s[i:])
		if i > 0 && best[i].from < 0 {
			i += csize
			continue
		}
		base := best[i].score
		single := false
		for j := i + 1; j <= n && j-i <= t.maxPieceLen; j++ {
			id, ok := t.pieceID[s[i:j]]
			if !ok || t.types[id] == typeUnused {
				continue
			}
			if j == i+csize {
				single = true
			}
			sc := base + float64(t.score(id))
			if best[j].from < 0 || sc > best[j].score {
				best[j] = node{score: sc, from: int32(i), id: id}
			}
		}
		if !single {
			j := i + csize
			sc := base + unkScore
			if best[j].from < 0 || sc > best[j].score {
				best[j] = node{score: sc, from: int32(i), id: -1}
			}
		}
		i += csize
	}
	// Backtrack into a reversed list of (start, end, id).
	type seg struct{ i, j, id int32 }
	var segs []seg
	for j := n; j > 0; {
		nd := best[j]
		segs = append(segs, seg{nd.from, int32(j), nd.id})
		j = int(nd.from)
	}
	lastUnk := false
	for k := len(segs) - 1; k >= 0; k-- {
		sg := segs[k]
		if sg.id >= 0 {
			out = append(out, sg.id)
			lastUnk = false
			continue
		}
		out, lastUnk = t.unknown(s[sg.i:sg.j], out, lastUnk)
	}
	return out
}

// buildPieceBytes precomputes what each token decodes to.
func (t *Tokenizer) buildPieceBytes() {
	t.pieceStr = make([]string, len(t.tokens))
	t.lstrip = make([]bool, len(t.tokens))
	for i, tok := range t.tokens {
		typ := t.types[i]
		switch typ {
		case typeControl:
			continue
		case typeByte:
			if b, ok := parseByteToken(tok); ok {
				t.pieceStr[i] = string([]byte{b})
				continue
			}
		case typeUnknown:
			if t.kind == kindSPM {
				t.pieceStr[i] = t.unkSurface
			}
			continue
		}
		if t.kind == kindBPE {
			if typ == typeUserDefined {
				t.pieceStr[i] = tok
			} else {
				t.pieceStr[i] = string(unicodeToBytes(nil, tok)) // GPT-2 alphabet -> raw bytes
			}
			continue
		}
		t.pieceStr[i] = strings.ReplaceAll(tok, spaceMark, " ")
		t.lstrip[i] = typ == typeNormal && strings.HasPrefix(tok, spaceMark)
	}
}
