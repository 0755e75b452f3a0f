package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the command line above the engine: data flows loader -> engine ->
// moe/quant -> kernels, and the command talks to engine (and bench and the server) only,
// so that what it needs from the layers below is part of engine's API and those layers
// can change without it. Test files may use the lower packages for fixtures.
func TestImports(t *testing.T) {
	const module = "github.com/mole-llm/mole/"
	allowed := map[string]bool{
		"engine": true, "engine/server": true, "engine/defaultmodel": true, "engine/tokenizer": true,
		"bench": true,
	}
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		n++
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			rel, ours := strings.CutPrefix(p, module)
			if !ours || allowed[rel] || strings.HasPrefix(rel, "cmd/mole/") {
				continue
			}
			t.Errorf("%s imports %s: cmd/mole uses engine (engine/server, engine/defaultmodel, engine/tokenizer) and bench only; "+
				"add what it needs to engine's API", fset.Position(imp.Pos()), p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("checked %d files: is the test running in cmd/mole?", n)
	}
}
