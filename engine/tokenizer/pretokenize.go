package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers split text into the words that BPE encodes one by one. Each family is defined upstream by one or
// more regular expressions (Hugging Face tokenizer.json Split/ByteLevel pre-tokenizers; llama.cpp llama-vocab.cpp
// keyed by GGUF tokenizer.ggml.pre). Go's regexp has no lookahead and no possessive/ordered backtracking of the
// kind those patterns rely on, so every pattern is a hand-written scanner that returns exactly what the
// leftmost-first, greedy, backtracking engine (Oniguruma in HF tokenizers) returns. The reference vectors under
// ../shared/models/vocab were produced with HF tokenizers, so HF semantics win where llama.cpp differs.
//
// Character classes: \p{L} = unicode.IsLetter, \p{N} = unicode.IsNumber (Nd+Nl+No), \p{P} = unicode.IsPunct,
// \p{S} = unicode.IsSymbol, \p{M} = unicode.IsMark, \s = unicode.IsSpace (the Unicode White_Space set: \t\n\v\f\r,
// space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 - the same set Oniguruma uses).
// Invalid UTF-8 decodes as U+FFFD width 1 (neither letter, number nor space), and pieces are always slices of the
// input, so their concatenation is the input byte for byte.

// stage re-splits one piece, appending the resulting pieces (in order, concatenating to piece) to dst.
type stage func(piece string, dst []string) []string

// matcher reports the end of the match starting exactly at i in s, or -1 when the pattern does not match at i.
// s is the whole piece: anchors and lookaheads look at its end, as the regex engine sees only that piece.
type matcher func(s string, i int) int

// isolated turns a matcher into an HF Split(behavior=Isolated) stage: every match is its own piece and the text
// between matches is kept as pieces too.
func isolated(m matcher) stage {
	return func(s string, dst []string) []string {
		gap := 0
		for i := 0; i < len(s); {
			if j := m(s, i); j > i {
				if gap < i {
					dst = append(dst, s[gap:i])
				}
				dst = append(dst, s[i:j])
				i, gap = j, j
				continue
			}
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
		}
		if gap < len(s) {
			dst = append(dst, s[gap:])
		}
		return dst
	}
}

// families maps GGUF tokenizer.ggml.pre names to their stages. Aliases follow llama.cpp's llama-vocab.cpp.
var families map[string][]stage

func init() {
	gpt2 := []stage{isolated(matchGPT2)}
	llama3 := []stage{isolated(matchLlama3)}
	qwen2 := []stage{isolated(matchQwen2)}
	// starcoder & co: HF Digits(individual_digits=true) then the GPT-2 ByteLevel regex.
	starcoder := []stage{isolated(matchOneNumber), isolated(matchGPT2)}
	// deepseek-v3: tokenizer.json Sequence of Split(Isolated) regexes (../shared/models/tokenizers/npm-lenml/deepseek_v3).
	deepseek3 := []stage{isolated(matchNumbers3), isolated(matchKanaHan), isolated(matchDeepseek3Main)}
	deepseekLLM := []stage{
		isolated(matchCRLF),            // [\r\n]
		isolated(matchDeepseekLetters), // \s?[cased letters]+
		isolated(matchDeepseekPunct),   // \s?[!-/:-~！-／：-～‘-‟　-。]+
		splitTrailingSpace,             // \s+$
		isolated(matchDeepseekCJK),     // [一-龥ࠀ-一가-퟿]+
		isolated(matchNumbers),         // \p{N}+
	}
	deepseekCoder := []stage{
		isolated(matchCRLF),         // [\r\n]
		isolated(matchSpaceLetters), // \s?\p{L}+
		isolated(matchSpacePunct),   // \s?\p{P}+
		isolated(matchDeepseekCJK),  // [一-龥ࠀ-一가-퟿]+
		isolated(matchOneNumber),    // \p{N}
	}
	falcon := []stage{
		isolated(matchFalconPunct), // HF Punctuation(Contiguous): [\p{P}\$\+<=>\^~\|`]+
		isolated(matchGPT2),        // ByteLevel regex
		isolated(matchThreeASCIIDigits),
	}
	// llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT, used for a GGUF without (or with an unrecognised) tokenizer.ggml.pre.
	// Like falcon but the punctuation class lacks the backtick and runs of numbers are isolated first.
	def := []stage{
		isolated(matchDefaultPunct), // [\p{P}\$\+<=>\^~\|]+
		isolated(matchGPT2),
		isolated(matchNumbers), // \p{N}+
		isolated(matchThreeASCIIDigits),
	}
	families = map[string][]stage{}
	add := func(st []stage, names ...string) {
		for _, n := range names {
			families[n] = st
		}
	}
	add(gpt2, "gpt-2", "gpt2", "gpt-neox", "mpt", "olmo", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en",
		"jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "jais", "trillion", "granite-docling",
		"exaone4", "a.x-4.0", "mellum")
	add(llama3, "llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
		"dbrx", "smaug-bpe", "glm4", "chatglm-bpe")
	add(qwen2, "qwen2", "deepseek-r1-qwen", "kormo", "stablelm2", "hunyuan", "megrez", "grok-2")
	add(starcoder, "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b")
	add(deepseek3, "deepseek-v3", "hunyuan-dense")
	add(deepseekLLM, "deepseek-llm")
	add(deepseekCoder, "deepseek-coder")
	add(falcon, "falcon")
	add(def, "default")
}

// knownPretokenizer reports whether pre names a pre-tokenizer implemented here. pretokenize falls back to the GPT-2
// pattern for unknown names; callers decide whether that is acceptable (warn or refuse).
func knownPretokenizer(pre string) bool {
	_, ok := families[pre]
	return ok
}

// pretokenize appends the pieces of text under pre-tokenizer pre to dst. The appended pieces are non-empty slices
// of text whose concatenation is text. Unknown names use the GPT-2 pattern.
func pretokenize(pre string, text string, dst []string) []string {
	if text == "" {
		return dst
	}
	stages, ok := families[pre]
	if !ok {
		stages = families["gpt-2"]
	}
	start := len(dst)
	dst = append(dst, text)
	for _, st := range stages {
		// Re-split dst[start:end] by appending behind it, then slide the new pieces down; no scratch allocation.
		end := len(dst)
		for k := start; k < end; k++ {
			dst = st(dst[k], dst)
		}
		m := copy(dst[start:], dst[end:])
		clear(dst[start+m:]) // drop references so the backing array does not pin substrings longer than needed
		dst = dst[:start+m]
	}
	return dst
}

// ---- character classes ----

func isL(r rune) bool {
	return r < utf8.RuneSelf && isASCIILetter(r) || r >= utf8.RuneSelf && unicode.IsLetter(r)
}
func isN(r rune) bool {
	return r < utf8.RuneSelf && r >= '0' && r <= '9' || r >= utf8.RuneSelf && unicode.IsNumber(r)
}
func isSpace(r rune) bool { return unicode.IsSpace(r) }

func isASCIILetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isSpace(r) && !isL(r) && !isN(r) }

// isPS is [\p{P}\p{S}].
func isPS(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

// isLM is [\p{L}\p{M}].
func isLM(r rune) bool { return isL(r) || unicode.IsMark(r) }

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

// at decodes the rune at i; at the end of s it returns (-1, 0) so class tests fail.
func at(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// run returns the end of the longest run of runes satisfying f starting at i (i itself when none).
func run(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := at(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// runMax is run limited to max runes (\p{N}{1,3}).
func runMax(s string, i int, f func(rune) bool, max int) int {
	for k := 0; k < max && i < len(s); k++ {
		r, n := at(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// ---- shared alternatives ----

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i (s[i] is an apostrophe); fold makes it case-insensitive, as
// (?i:...) in the Llama 3 / Qwen2 patterns. Oniguruma folds by Unicode CaseFolding, under which the only
// non-ASCII character equal to one of these letters is U+017F LATIN SMALL LETTER LONG S (folds to 's'), so an
// apostrophe + long s is a contraction in HF tokenizers (llama.cpp's rewrite '[sS]|'[tT]|... misses that case).
func contraction(s string, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return -1
	}
	if fold && strings.HasPrefix(s[i+1:], "\u017f") {
		return i + 1 + len("\u017f")
	}
	low := func(c byte) byte {
		if fold && c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	switch low(s[i+1]) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(s) && low(s[i+2]) == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(s) && low(s[i+2]) == 'l' {
			return i + 3
		}
	}
	return -1
}

// spaceTail matches \s+(?!\S)|\s+ at i (s[i] is whitespace): the whole whitespace run when it ends the piece,
// otherwise the run minus its last character (which is left to prefix the next word), or the single character
// when the run is one character long.
func spaceTail(s string, i int) int {
	j, last := i, i
	for j < len(s) {
		r, n := at(s, j)
		if !isSpace(r) {
			break
		}
		last = j
		j += n
	}
	if j == len(s) || last == i {
		return j
	}
	return last
}

// newlineSpace matches \s*[\r\n]+ at i: whitespace up to and including the last \r or \n of the whitespace run
// starting at i (greedy \s* backtracking to the last newline), or -1 when the run has none.
func newlineSpace(s string, i int) int {
	end := -1
	for j := i; j < len(s); {
		r, n := at(s, j)
		if !isSpace(r) {
			break
		}
		j += n
		if isCRLF(r) {
			end = j
		}
	}
	return end
}

// ---- GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ ----

func matchGPT2(s string, i int) int {
	r, n := at(s, i)
	if r == '\'' {
		if j := contraction(s, i, false); j > 0 {
			return j
		}
	}
	k := i
	if r == ' ' {
		if r2, n2 := at(s, i+n); r2 >= 0 && !isSpace(r2) {
			r, k = r2, i+n // the optional space is taken: a letter/number/other run follows
			n = n2
		}
	}
	switch {
	case isL(r):
		return run(s, k+n, isL)
	case isN(r):
		return run(s, k+n, isN)
	case !isSpace(r):
		return run(s, k+n, isOther)
	}
	return spaceTail(s, i)
}

// ---- Llama 3 / Qwen2 ----
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Qwen2 has \p{N} instead of \p{N}{1,3}.

func matchLlama3(s string, i int) int { return matchLlamaLike(s, i, 3) }
func matchQwen2(s string, i int) int  { return matchLlamaLike(s, i, 1) }

func matchLlamaLike(s string, i int, digits int) int {
	r, n := at(s, i)
	if r == '\'' {
		if j := contraction(s, i, true); j > 0 {
			return j
		}
	}
	if isL(r) {
		return run(s, i+n, isL)
	}
	if isN(r) {
		return runMax(s, i, isN, digits)
	}
	// [^\r\n\p{L}\p{N}]? before letters: any single non-newline character (space, punctuation, tab, ...).
	if !isCRLF(r) {
		if r2, n2 := at(s, i+n); isL(r2) {
			return run(s, i+n+n2, isL)
		}
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	k := i
	if r == ' ' {
		if r2, _ := at(s, i+n); isOther(r2) {
			k = i + n
			r, n = at(s, k)
		}
	}
	if isOther(r) {
		j := run(s, k+n, isOther)
		return run(s, j, isCRLF)
	}
	// r is whitespace.
	if j := newlineSpace(s, i); j > 0 {
		return j
	}
	return spaceTail(s, i)
}

// ---- DeepSeek-V3 ----
// 1: \p{N}{1,3}   2: [\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+
// 3: [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+

func matchNumbers3(s string, i int) int {
	if j := runMax(s, i, isN, 3); j > i {
		return j
	}
	return -1
}

func isKanaHan(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FA5 || r >= 0x3040 && r <= 0x30FF
}

func matchKanaHan(s string, i int) int {
	if j := run(s, i, isKanaHan); j > i {
		return j
	}
	return -1
}

// isASCIIPunct is the printable ASCII non-alphanumerics !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~.
func isASCIIPunct(r rune) bool {
	return r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~'
}

func matchDeepseek3Main(s string, i int) int {
	r, n := at(s, i)
	if isASCIIPunct(r) {
		if r2, _ := at(s, i+n); isASCIILetter(r2) {
			return run(s, i+n, isASCIILetter)
		}
	}
	if isLM(r) {
		return run(s, i+n, isLM)
	}
	if !isCRLF(r) && !isL(r) && !isPS(r) {
		if r2, n2 := at(s, i+n); isLM(r2) {
			return run(s, i+n+n2, isLM)
		}
	}
	k := i
	if r == ' ' {
		if r2, _ := at(s, i+n); isPS(r2) {
			k = i + n
			r, n = at(s, k)
		}
	}
	if isPS(r) {
		j := run(s, k+n, isPS)
		return run(s, j, isCRLF)
	}
	if isSpace(r) {
		if j := newlineSpace(s, i); j > 0 {
			return j
		}
		return spaceTail(s, i)
	}
	return -1 // digits, controls, unassigned: left for the gap piece
}

// ---- DeepSeek LLM / Coder (llama.cpp regex lists; HF tokenizer.json Split sequences) ----

func matchCRLF(s string, i int) int {
	if i < len(s) && (s[i] == '\r' || s[i] == '\n') {
		return i + 1
	}
	return -1
}

// optSpaceRun handles a leading \s? : the match may start with one whitespace character if f matches after it.
func optSpaceRun(s string, i int, f func(rune) bool) int {
	r, n := at(s, i)
	if isSpace(r) {
		if r2, n2 := at(s, i+n); f(r2) {
			return run(s, i+n+n2, f)
		}
		// \s? backtracks to empty: the space itself may be in the class (U+3000 is in DeepSeek's punctuation).
	}
	if f(r) {
		return run(s, i+n, f)
	}
	return -1
}

func matchSpaceLetters(s string, i int) int { return optSpaceRun(s, i, isL) }
func matchSpacePunct(s string, i int) int   { return optSpaceRun(s, i, unicode.IsPunct) }

func matchDeepseekLetters(s string, i int) int { return optSpaceRun(s, i, isDeepseekLetter) }
func matchDeepseekPunct(s string, i int) int   { return optSpaceRun(s, i, isDeepseekPunct) }

// isDeepseekPunct is [!-/:-~！-／：-～‘-‟　-。] (note :-~ includes the ASCII letters).
func isDeepseekPunct(r rune) bool {
	return r >= '!' && r <= '/' || r >= ':' && r <= '~' || r >= 0xFF01 && r <= 0xFF0F || r >= 0xFF1A && r <= 0xFF5E ||
		r >= 0x2018 && r <= 0x201F || r >= 0x3000 && r <= 0x3002
}

// isDeepseekCJK is [一-龥ࠀ-一가-퟿] = U+4E00-U+9FA5, U+0800-U+4E00, U+AC00-U+D7FF.
func isDeepseekCJK(r rune) bool {
	return r >= 0x0800 && r <= 0x9FA5 || r >= 0xAC00 && r <= 0xD7FF
}

func matchDeepseekCJK(s string, i int) int {
	if j := run(s, i, isDeepseekCJK); j > i {
		return j
	}
	return -1
}

func matchNumbers(s string, i int) int {
	if j := run(s, i, isN); j > i {
		return j
	}
	return -1
}

func matchOneNumber(s string, i int) int {
	if r, n := at(s, i); isN(r) {
		return i + n
	}
	return -1
}

// splitTrailingSpace is Split(\s+$, Isolated): the only match of \s+$ in a piece is its trailing whitespace run
// (pieces reaching this stage hold no newline other than a lone "\r"/"\n", so multi-line $ changes nothing).
// Done directly rather than through a matcher to stay linear on long whitespace runs.
func splitTrailingSpace(s string, dst []string) []string {
	t := len(s)
	for t > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:t])
		if !isSpace(r) {
			break
		}
		t -= n
	}
	if t > 0 && t < len(s) {
		return append(dst, s[:t], s[t:])
	}
	return append(dst, s)
}

// ---- Falcon ----

// isFalconPunct is [\p{P}\$\+<=>\^~\|`]: HF Punctuation uses Unicode P plus all ASCII punctuation.
func isFalconPunct(r rune) bool { return unicode.IsPunct(r) || isASCIIPunct(r) }

func matchFalconPunct(s string, i int) int {
	if j := run(s, i, isFalconPunct); j > i {
		return j
	}
	return -1
}

func isDefaultPunct(r rune) bool { return r != '`' && isFalconPunct(r) }

func matchDefaultPunct(s string, i int) int {
	if j := run(s, i, isDefaultPunct); j > i {
		return j
	}
	return -1
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }

func matchThreeASCIIDigits(s string, i int) int {
	if i+3 <= len(s) && isASCIIDigit(rune(s[i])) && isASCIIDigit(rune(s[i+1])) && isASCIIDigit(rune(s[i+2])) {
		return i + 3
	}
	return -1
}

// ---- DeepSeek LLM letter class ----

// deepseekLetterRanges is the bracket class of DeepSeek LLM's \s?[A-Za-zµÀ-ÖØ-ö...]+ pattern: a fixed list of
// cased-letter ranges (a subset of \p{LC}), sorted. The list is part of the tokenizer's definition, so it is kept
// literally rather than derived from Go's Unicode tables (which know more cased letters).
var deepseekLetterRanges = [][2]rune{
	{0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
	{0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
	{0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
	{0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
	{0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
	{0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D},
	{0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
	{0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
	{0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
	{0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
	{0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
	{0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF},
	{0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
	{0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
	{0x1E900, 0x1E943},
}

func isDeepseekLetter(r rune) bool {
	if r < 0x80 {
		return isASCIILetter(r)
	}
	lo, hi := 0, len(deepseekLetterRanges)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < deepseekLetterRanges[m][0]:
			hi = m
		case r > deepseekLetterRanges[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// ---- tokenizer.json pre_tokenizer -> family ----

// hfSplitFamilies lists the Split regex sequences (as written in tokenizer.json, JSON-unescaped, with literal CR/LF
// characters normalised to \r \n) whose semantics pretokenize implements, with the family that implements them.
var hfSplitFamilies = []struct {
	pre     string
	regexes []string
}{
	{"qwen2", []string{`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}},
	{"llama-bpe", []string{`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}},
	{"deepseek-v3", []string{
		`\p{N}{1,3}`,
		`[一-龥぀-ゟ゠-ヿ]+`,
		`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_` + "`" + `{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	}},
	{"gpt-2", []string{`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`}},
}

// preFromHF maps a tokenizer.json pre_tokenizer to a family name: splitRegexes are the Regex patterns of its Split
// (behavior Isolated) steps in order, byteLevelUseRegex is ByteLevel.use_regex. Only exact pattern matches are
// accepted, so a tokenizer whose splitting differs is reported (ok=false) instead of being silently mis-split.
func preFromHF(splitRegexes []string, byteLevelUseRegex bool) (pre string, ok bool) {
	if len(splitRegexes) == 0 {
		if byteLevelUseRegex {
			return "gpt-2", true // plain ByteLevel: the GPT-2 pattern
		}
		return "", false
	}
	if byteLevelUseRegex {
		return "", false // a Split followed by the GPT-2 regex again: no family here does that
	}
	norm := strings.NewReplacer("\r", `\r`, "\n", `\n`, `\u4e00`, "一", `\u9fa5`, "龥", `\u3040`, "぀", `\u309f`, "ゟ",
		`\u30a0`, "゠", `\u30ff`, "ヿ")
	for _, f := range hfSplitFamilies {
		if len(f.regexes) != len(splitRegexes) {
			continue
		}
		same := true
		for i, r := range splitRegexes {
			if norm.Replace(r) != f.regexes[i] {
				same = false
				break
			}
		}
		if same {
			return f.pre, true
		}
	}
	return "", false
}
