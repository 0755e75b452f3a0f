package loader

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestQuoteShortIsPercentQ(t *testing.T) {
	for _, s := range []string{"", "llama", "blk.0.ffn_gate_exps.weight", "a\x00b\n"} {
		if got, want := Quote(s), strconv.Quote(s); got != want {
			t.Errorf("Quote(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestQuoteCutsLongStrings(t *testing.T) {
	bin := make([]byte, 700)
	for i := range bin {
		bin[i] = byte(0x80 + i%100) // not UTF-8: every byte is a \x escape
	}
	for _, s := range []string{string(bin), strings.Repeat("é", 400), strings.Repeat("k", 5000)} {
		q := Quote(s)
		if len(q) > 100 {
			t.Errorf("Quote of %d bytes is %d bytes: %s", len(s), len(q), q)
		}
		if want := "… (" + strconv.Itoa(len(s)) + " bytes)"; !strings.HasSuffix(q, want) {
			t.Errorf("Quote = %s, want the suffix %q", q, want)
		}
		p, err := strconv.Unquote(strings.TrimSuffix(q, "… ("+strconv.Itoa(len(s))+" bytes)"))
		if err != nil || !strings.HasPrefix(s, p) || len(p) == 0 {
			t.Errorf("Quote = %s: not a quoted prefix of the string (%v)", q, err)
		}
	}
}

// A corrupted or hostile file can hold a metadata key or tensor name of any length and
// bytes; the error must stay one short line naming the file and the offset.
func TestGGUFLongBinaryKeyError(t *testing.T) {
	key := make([]byte, 700)
	for i := range key {
		key[i] = byte(i*7 + 1)
	}
	long := string(key)
	dir := t.TempDir()
	cases := []struct {
		name string
		data []byte
	}{
		{"unknown value type", header(0, 1).str(long).u32(13).u32(0).b},
		{"truncated after the key", header(0, 1).str(long).b},
		{"bad array element type", header(0, 1).str(long).u32(uint32(TypeArray)).u32(77).u64(0).b},
		{"duplicate key", header(0, 2).str(long).u32(uint32(TypeU8)).raw(1).str(long).u32(uint32(TypeU8)).raw(2).b},
		{"duplicate tensor", header(2, 0).tensorInfo(long, 0, 0, 1).tensorInfo(long, 0, 32, 1).data(64).b},
		{"unknown tensor type", header(1, 0).tensorInfo(long, 99, 0, 4).data(64).b},
		{"alignment", header(0, 1).str("general.alignment").u32(uint32(TypeString)).str(long).b},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".gguf")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := Open(path)
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			msg := err.Error()
			// The path of a test's temporary directory is long itself; what matters is
			// that the key adds a bounded amount, not its 700 bytes.
			if n := len(msg) - len(path); n > 150 {
				t.Errorf("error is %d bytes beyond the path: %s", n, msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %s", msg)
			}
			if !strings.Contains(msg, path) || !strings.Contains(msg, "offset") {
				t.Errorf("error does not name the file and offset: %s", msg)
			}
			t.Log(msg)
		})
	}
}

func TestSafetensorsLongKeyError(t *testing.T) {
	long := strings.Repeat(`\u0001\u00ff`, 350)
	data := st(`{"`+long+`":{"dtype":"`+strings.Repeat("X", 500)+`","shape":[2],"data_offsets":[0,2]}}`, 2)
	_, _, err := ParseSafetensors("bad.safetensors", data)
	wantErr(t, err, "bad.safetensors", "unsupported dtype", "(1050 bytes)", "(500 bytes)")
	// Two quoted strings, each bounded: the line stays short.
	if err != nil && len(err.Error()) > 240 {
		t.Errorf("error is %d bytes: %s", len(err.Error()), err)
	}
}
