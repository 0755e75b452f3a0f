package main

import "github.com/mole-llm/mole/engine"

// The MWQ schemes of `mole quantize` (mwq24, mwq58) are set up by engine.SetMWQ
// (engine/quantize_mwq.go: experts MWQ, other projections MOLE_Q8).
func init() {
	prev := setMWQ
	setMWQ = func(o *engine.QuantizeOptions, typ string) error {
		if ok, err := engine.SetMWQ(o, typ); ok || err != nil {
			return err
		}
		return prev(o, typ)
	}
}
