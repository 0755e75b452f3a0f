package engine

import "testing"

var conversation = []Message{
	{"system", "Be brief."},
	{"user", "Hi"},
	{"assistant", "Hello."},
	{"user", "Who are you?"},
}

func TestChatML(t *testing.T) {
	got, err := ApplyChatTemplate(ChatML, conversation, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n" +
		"<|im_start|>user\nHi<|im_end|>\n" +
		"<|im_start|>assistant\nHello.<|im_end|>\n" +
		"<|im_start|>user\nWho are you?<|im_end|>\n" +
		"<|im_start|>assistant\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	got, _ = ApplyChatTemplate(ChatML, conversation[1:2], false)
	if want := "<|im_start|>user\nHi<|im_end|>\n"; got != want {
		t.Fatalf("no generation prompt: got %q want %q", got, want)
	}
}

func TestMistral(t *testing.T) {
	got, err := ApplyChatTemplate(Mistral, conversation, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "[INST] Be brief.\n\nHi [/INST] Hello.</s>[INST] Who are you? [/INST]"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	// mistral-common samples/no_tools, joined as text (text_v1.txt shows the pieces).
	got, err = ApplyChatTemplate(Mistral, noToolsSample, true)
	if err != nil {
		t.Fatal(err)
	}
	want = "[INST] What's the result of 5 + 5? [/INST] The result of 5 + 5 is 10.</s>" +
		"[INST] What is the square root of 64? [/INST] The square root of 64 is 8, because 8 x 8 equals 64.</s>" +
		"[INST] Can you multiply the results of the previous two questions? [/INST] Sure! The result of 10 x 8 is 80.</s>" +
		"[INST] Thanks [/INST]"
	if got != want {
		t.Fatalf("no_tools: got\n%q\nwant\n%q", got, want)
	}
	for _, bad := range [][]Message{
		{{"assistant", "x"}},
		{{"user", "a"}, {"user", "b"}},
		{{"system", "s"}},
		{{"tool", "x"}},
	} {
		if _, err := ApplyChatTemplate(Mistral, bad, true); err == nil {
			t.Errorf("%v: want error", bad)
		}
	}
}

var noToolsSample = []Message{
	{"user", "What's the result of 5 + 5?"},
	{"assistant", "The result of 5 + 5 is 10."},
	{"user", "What is the square root of 64?"},
	{"assistant", "The square root of 64 is 8, because 8 x 8 equals 64."},
	{"user", "Can you multiply the results of the previous two questions?"},
	{"assistant", "Sure! The result of 10 x 8 is 80."},
	{"user", "Thanks"},
}

func TestPlainChat(t *testing.T) {
	got, err := ApplyChatTemplate(Plain, conversation, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Who are you?\nAssistant:"
	if got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if _, err := ApplyChatTemplate("jinja", conversation, true); err == nil {
		t.Fatal("unknown format: want error")
	}
}

func TestChatFormatFor(t *testing.T) {
	cases := []struct {
		tmpl, family string
		inst         bool
		want         ChatFormat
	}{
		{"{% for m in messages %}<|im_start|>{{ m.role }}...", "llama", false, ChatML},
		{"{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]", "qwen2moe", false, Mistral},
		{"{{ '<|user|>' }}", "olmoe", false, Plain},
		{"", "qwen2moe", false, ChatML},
		{"", "qwen3moe", false, ChatML},
		{"", "olmoe", false, ChatML},
		{"", "mixtral", false, Mistral},
		{"", "llama", true, Mistral},
		{"", "llama", false, Plain},
		{"", "", false, Plain},
	}
	for _, c := range cases {
		if got := ChatFormatFor(c.tmpl, c.family, c.inst); got != c.want {
			t.Errorf("ChatFormatFor(%q, %q, %v) = %s, want %s", c.tmpl, c.family, c.inst, got, c.want)
		}
	}
}
