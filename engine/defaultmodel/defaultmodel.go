// Package defaultmodel embeds mole's default model, kjv-moe: a small Mixtral-architecture
// Mixture-of-Experts trained on the King James Bible for this project (13.9M parameters,
// 8 experts, top-2). It is what `mole run` uses when no -m is given, so the first command in
// README.md works on a fresh clone with nothing downloaded.
//
// The weights are float16 safetensors written by mole's own writer from the float32 original
// (norms stay float32, as llama.cpp's converter keeps them); `go generate` rebuilds them from
// ../shared/models/kjv-moe when that folder is present.
package defaultmodel

import (
	_ "embed"

	"github.com/mole-llm/mole/loader"
)

//go:generate go run gen.go -src ../../../shared/models/kjv-moe -dst kjv-moe

// Name is how the default model is named in messages and in `mole info`.
const Name = "kjv-moe (embedded)"

// The files are embedded as byte slices, not an embed.FS, because embed.FS.ReadFile copies:
// a []byte variable is used in place, like a memory map of the executable.
var (
	//go:embed kjv-moe/model.safetensors
	modelSafetensors []byte
	//go:embed kjv-moe/config.json
	configJSON []byte
	//go:embed kjv-moe/generation_config.json
	generationConfigJSON []byte
	//go:embed kjv-moe/tokenizer.model
	tokenizerModel []byte
	//go:embed kjv-moe/tokenizer_config.json
	tokenizerConfigJSON []byte
	//go:embed kjv-moe/special_tokens_map.json
	specialTokensMapJSON []byte
)

// Files returns the embedded Hugging Face folder, file name to contents. The slices are the
// embedded data itself and must not be modified.
func Files() map[string][]byte {
	return map[string][]byte{
		"model.safetensors":       modelSafetensors,
		"config.json":             configJSON,
		"generation_config.json":  generationConfigJSON,
		"tokenizer.model":         tokenizerModel,
		"tokenizer_config.json":   tokenizerConfigJSON,
		"special_tokens_map.json": specialTokensMapJSON,
	}
}

// Open returns the embedded model as a loader.Model, exactly as if its folder had been
// opened from disk.
func Open() (*loader.Model, error) {
	return loader.OpenHFFiles(Name, Files())
}
