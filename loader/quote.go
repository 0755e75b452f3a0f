package loader

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// quoteMax bounds the quoted text of one file-controlled string in an error: a corrupt
// or hostile file can hold keys and names of any length and any bytes, and an error
// must stay one readable line that still says which file and offset are wrong.
const quoteMax = 32

// Quote returns s as an error message shows a string read from a file (a metadata key
// or value, a tensor name, an architecture): Go-quoted like %q, but only its first
// characters, cut so that the quoted text stays under about quoteMax bytes even when
// every byte needs a \x escape, followed by "… (N bytes)" when s was cut. Every error
// that quotes file content goes through it.
func Quote(s string) string {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		w := 4 // \xNN for a byte that is not UTF-8
		if r != utf8.RuneError || size > 1 {
			w = len(strconv.QuoteRune(r)) - 2
		}
		if n+w > quoteMax {
			return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:i]), len(s))
		}
		n += w
		i += size
	}
	return strconv.Quote(s)
}

// quoteValue is a metadata value for an error: a string through Quote, anything else
// as Value.String shows it (numbers; arrays already abbreviated), cut to a line.
func quoteValue(v Value) string {
	if s, ok := v.Str(); ok {
		return Quote(s)
	}
	s := v.String()
	if len(s) > 2*quoteMax {
		i := 2 * quoteMax
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return s
}
