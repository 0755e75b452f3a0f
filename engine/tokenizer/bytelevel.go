package tokenizer

// byteLevelDecode returns the raw bytes a byte-level BPE token stands for
// (GPT-2 alphabet -> bytes, via helper B's table).
func byteLevelDecode(tok string) []byte { return unicodeToBytes(nil, tok) }
