package server

// The prompt cache: a slot's State keeps its KV cache after a request ends, and records
// which tokens it holds (engine.State.Cached), so a request that repeats a prefix of what
// a free slot evaluated (a chat client resending the conversation with one more turn)
// starts there and evaluates only the rest (engine.Model.NewCachedSequence). It is on by
// default; Config.NoCachePrompt turns it off, and a request opts out with
// "cache_prompt": false, llama.cpp's name for the same switch.

// pick returns the free slot to start r in, nil when none is free. When r may use the
// cache, that is the slot whose KV cache holds the longest prefix of r's prompt, provided
// the two look like one conversation: the prefix is more than half of the prompt, or at
// least half of what the slot holds. Otherwise (no such slot, or r does not use the cache)
// it is the least recently used slot, whose cache is the one least likely to be continued;
// r still keeps whatever prefix that slot happens to share.
//
// Why not the longest prefix alone: every chat prompt starts with the same template markers
// (and often the same system prompt), so a new conversation would go to the slot of the
// last one sharing those few tokens and evict a conversation that is likely to continue,
// for a handful of tokens. (llama.cpp's server guards the same way, with its
// --slot-prompt-similarity.) The second condition keeps a conversation in its slot when
// the prompt grew by more than the prefix, or when re-rendering the history does not
// reproduce the tokens of the last reply (a template that puts a space before replies,
// say), which ends the shared prefix at the previous prompt.
func (s *scheduler) pick(r *request) *slot {
	var lru, best *slot
	bestN := 0
	for _, sl := range s.slots {
		if sl.req != nil {
			continue
		}
		if lru == nil || sl.used < lru.used {
			lru = sl
		}
		if !r.cache {
			continue
		}
		n := sl.state.CommonPrefix(r.prompt)
		if n > bestN && (2*n > len(r.prompt) || 2*n >= len(sl.state.Cached())) {
			best, bestN = sl, n
		}
	}
	if best != nil {
		return best
	}
	return lru
}
