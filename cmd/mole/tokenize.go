package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newTokenizeCmd() *cobra.Command {
	var (
		modelPath      string
		noBOS, pieces  bool
		noParseSpecial bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize [-m MODEL] TEXT",
		Short: "Print the token ids of TEXT on one line (\"-\" reads TEXT from stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := textArg(cmd, args[0])
			if err != nil {
				return err
			}
			tok, closeFn, err := loadTokenizer(modelPath)
			if err != nil {
				return err
			}
			defer closeFn()
			ids := tok.Encode(text, !noBOS && tok.AddBOS(), !noParseSpecial)
			out := cmd.OutOrStdout()
			strs := make([]string, len(ids))
			for i, id := range ids {
				strs[i] = strconv.Itoa(int(id))
			}
			fmt.Fprintln(out, strings.Join(strs, " "))
			if pieces {
				for i, id := range ids {
					strs[i] = strconv.Quote(tok.Token(id))
				}
				fmt.Fprintln(out, strings.Join(strs, " "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF file or Hugging Face folder (default: the embedded model)")
	f.BoolVar(&noBOS, "no-bos", false, "do not add the BOS token")
	f.BoolVar(&pieces, "pieces", false, "also print the token strings, quoted, on a second line")
	f.BoolVar(&noParseSpecial, "no-parse-special", false, "tokenize special-token strings such as <s> as plain text")
	return cmd
}

// textArg returns arg, or all of stdin when arg is "-".
func textArg(cmd *cobra.Command, arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	b, err := io.ReadAll(cmd.InOrStdin())
	if err != nil {
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	return string(b), nil
}
