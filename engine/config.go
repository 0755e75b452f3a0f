package engine

// Config describes a model's shape and the conventions its family uses.
type Config struct {
	Arch   string // GGUF general.architecture, or the HF architectures[0] class name
	Family string // an entry of Families: "llama", "mixtral", "qwen2moe", "qwen3moe" or "olmoe"
	Format string // "gguf" or "safetensors"

	NLayer      int
	NEmbd       int
	NHead       int
	NKVHead     int
	HeadDim     int
	NFF         int // dense FFN width (layers without a router)
	NExpert     int // 0 for dense models
	NExpertUsed int
	NFFExpert   int // routed expert width
	NFFShared   int // shared expert width (Qwen2-MoE), 0 when none
	Vocab       int
	CtxLen      int // training context length

	RopeTheta float64
	// RopeNeoX selects rotate-half pairs (i, i+d/2). It is false for GGUF files of
	// families whose q/k rows llama.cpp's converter permutes into interleaved pairs
	// (Llama, Mixtral: family.ggufPermuteQK).
	RopeNeoX bool
	NormEps  float32

	NormTopK       bool   // renormalise the top-k router weights to sum to 1
	QKNorm         string // "" none, "head": RMSNorm per head (Qwen3-MoE), "full": over the whole projection (OLMoE)
	TiedEmbeddings bool   // the output projection is the token embedding
}
