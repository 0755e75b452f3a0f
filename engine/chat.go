package engine

import (
	"fmt"
	"strings"
)

// Message is one turn of a conversation. Role is "system", "user" or "assistant".
type Message struct {
	Role    string
	Content string
}

// ChatFormat names a prompt layout. mole does not run Jinja templates: it recognises the
// layout a model's template implements and writes it with Go code (see ChatFormatFor).
type ChatFormat string

const (
	// ChatML (Qwen, OLMoE and many others):
	//
	//	<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n
	//
	// No default system message is inserted (Qwen2's template adds one; Qwen3's does not).
	ChatML ChatFormat = "chatml"

	// Mistral is the v1 [INST] layout of Mistral-7B-v0.1 and Mixtral-8x7B, where [INST] is
	// plain text rather than a control token:
	//
	//	[INST] S\n\nU1 [/INST] A1</s>[INST] U2 [/INST]
	//
	// The system prompt is prepended to the first user message, as mistral-common's v1
	// tokenizer does. Encoded with the BOS token in front and each text segment after a
	// special token getting SentencePiece's dummy-prefix space, this gives exactly
	// mistral-common's token ids (samples/no_tools/tokens_v1.json).
	Mistral ChatFormat = "mistral"

	// Plain is the fallback for models without a recognisable template, e.g. base models:
	//
	//	S\n\nUser: U1\nAssistant: A1\nUser: U2\nAssistant:
	//
	// It is not what any model was trained on; it merely reads naturally to a base model.
	Plain ChatFormat = "plain"
)

// ChatFormatFor chooses the layout for a model. template is the raw chat template from the
// model's metadata (GGUF tokenizer.chat_template or tokenizer_config.json chat_template,
// may be ""); family is the model family (engine Config.Family, e.g. "qwen2moe",
// "mixtral", or a dense relative a family lists as a chat alias, e.g. "qwen3"; the
// fallbacks are the families' chat fields, family.go); instTokens reports whether the vocabulary has [INST] as a token, the sign of
// a Mistral-instruct tokenizer on llama-architecture models.
//
// The template's markers win over the family because fine-tunes change templates.
func ChatFormatFor(template, family string, instTokens bool) ChatFormat {
	switch {
	case strings.Contains(template, "<|im_start|>"):
		return ChatML
	case strings.Contains(template, "[INST]"):
		return Mistral
	case template != "":
		// An unknown template: better a neutral layout than another model's markers.
		return Plain
	}
	f := familyForChat(family)
	switch {
	case f == nil:
		return Plain
	case instTokens && f.chatInst != "":
		return f.chatInst
	}
	return f.chat
}

// ApplyChatTemplate renders msgs in format f. With addGenerationPrompt the text ends where
// the assistant's reply begins. The BOS token is never included: encode the result with the
// tokenizer's own BOS setting and with special-token parsing on (for "</s>" and
// "<|im_start|>").
func ApplyChatTemplate(f ChatFormat, msgs []Message, addGenerationPrompt bool) (string, error) {
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return "", fmt.Errorf("chat message %d: unknown role %q (want system, user or assistant)", i, m.Role)
		}
	}
	var b strings.Builder
	switch f {
	case ChatML:
		for _, m := range msgs {
			b.WriteString("<|im_start|>")
			b.WriteString(m.Role)
			b.WriteByte('\n')
			b.WriteString(m.Content)
			b.WriteString("<|im_end|>\n")
		}
		if addGenerationPrompt {
			b.WriteString("<|im_start|>assistant\n")
		}
	case Mistral:
		return mistralV1(msgs, addGenerationPrompt)
	case Plain, "":
		for i, m := range msgs {
			switch m.Role {
			case "system":
				b.WriteString(m.Content)
				b.WriteString("\n\n")
			case "user":
				b.WriteString("User: ")
				b.WriteString(m.Content)
				b.WriteByte('\n')
			case "assistant":
				b.WriteString("Assistant: ")
				b.WriteString(m.Content)
				if i < len(msgs)-1 || addGenerationPrompt {
					b.WriteByte('\n')
				}
			}
		}
		// No trailing space: SentencePiece and byte-level BPE vocabularies both carry the
		// space on the next word's token, so the model supplies it.
		if addGenerationPrompt {
			b.WriteString("Assistant:")
		}
	default:
		return "", fmt.Errorf("unknown chat format %q", string(f))
	}
	return b.String(), nil
}

// mistralV1 writes the [INST] layout. The format only knows user/assistant alternation:
// system messages must come first and are folded into the first user message.
func mistralV1(msgs []Message, addGenerationPrompt bool) (string, error) {
	var system []string
	i := 0
	for ; i < len(msgs) && msgs[i].Role == "system"; i++ {
		system = append(system, msgs[i].Content)
	}
	var b strings.Builder
	want := "user"
	for j, m := range msgs[i:] {
		if m.Role != want {
			return "", fmt.Errorf("chat message %d: the Mistral format needs user and assistant turns alternating from a user turn, got %q", i+j, m.Role)
		}
		if m.Role == "user" {
			b.WriteString("[INST] ")
			if j == 0 && len(system) > 0 {
				b.WriteString(strings.Join(system, "\n\n"))
				b.WriteString("\n\n")
			}
			b.WriteString(m.Content)
			b.WriteString(" [/INST]")
			want = "assistant"
		} else {
			b.WriteByte(' ')
			b.WriteString(m.Content)
			b.WriteString("</s>")
			want = "user"
		}
	}
	if i == len(msgs) && len(system) > 0 {
		return "", fmt.Errorf("the Mistral format needs a user message after the system prompt")
	}
	// The generation prompt is implicit: after "[/INST]" the assistant speaks next.
	_ = addGenerationPrompt
	return b.String(), nil
}
