package engine

import "testing"

// TestFamilyTable: every family's data is complete and implemented, and no two families
// claim the same name, Hugging Face class or model_type, or GGUF arch with the same moe.
func TestFamilyTable(t *testing.T) {
	seen := map[string]string{}
	claim := func(f *family, what, key string) {
		if other, ok := seen[what+" "+key]; ok {
			t.Errorf("%s %q is claimed by %s and %s", what, key, other, f.name)
		}
		seen[what+" "+key] = f.name
	}
	for _, f := range families {
		if err := f.check(); err != nil {
			t.Error(err)
		}
		claim(f, "name", f.name)
		for _, a := range f.hfArchs {
			claim(f, "Hugging Face name", a)
		}
		for _, a := range f.hfModelTypes {
			claim(f, "Hugging Face name", a)
		}
		for _, a := range f.chatAliases {
			claim(f, "chat name", a)
			if familyByName(a) != nil {
				t.Errorf("%s: chat alias %q is a family", f.name, a)
			}
		}
		claim(f, "GGUF arch", f.gguf+map[bool]string{true: " moe", false: " dense"}[f.moe])
		if f.hfNames.Q == "" || f.ggufNames.Q == "" || len(f.hfKeys.NLayer) == 0 || len(f.ggufKeys.NLayer) == 0 {
			t.Errorf("%s: default names or keys not inherited", f.name)
		}
		if familyByName(f.name) != f || familyForHF(f.hfArchs[0]) != f {
			t.Errorf("%s: lookups do not find it", f.name)
		}
	}
	if len(Families) != len(families) {
		t.Errorf("Families %v, table has %d", Families, len(families))
	}
}
