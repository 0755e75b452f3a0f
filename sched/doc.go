// Package sched runs MoE models whose experts do not fit in memory: a byte budget holds
// the always-resident weights (attention, routers, norms, embeddings, head, shared
// experts) and a cache of MWQ expert bit-planes, loaded by one I/O goroutine from the
// model file into memory the cache owns (docs/algorithms.md §2–3, D²MoE's HEBF).
//
// Per MoE layer, once the router has chosen, Cache.Plan decides synchronously, from the
// routing alone, each active expert's width (hot experts more planes, cold ones the base),
// the order of loads (hottest expert first; each expert's planes base first, then in
// increasing bit order) and what to evict (D²MoE Algorithm 2: the high planes of other
// layers first, the layer whose next use is farthest first, then low planes, coldest
// first, so hot low planes stay). The I/O worker then performs the reads in that order
// while the engine computes the experts whose planes are in (Wait / Computed). Because
// every decision is taken at plan time, the cache's contents — and therefore the widths
// and the results — never depend on I/O timing: scheduling changes speed, never results.
//
// The budget is counted in bytes of the cache's slots (page-rounded) and can never be
// exceeded: an allocation evicts first, and the worker releases (MADV_DONTNEED) a victim's
// memory before it reads into new memory.
//
// sched imports no part of the engine; the engine binds its MWQ expert matrices to the
// views the cache hands out (engine/sched*.go).
package sched
