// Package moe owns expert routing for Mixture-of-Experts layers: turning a router's
// logits into the chosen experts and their mixing weights, for each family's rule
// (softmax, top-k, optional renormalisation). It does not run the experts; the engine
// does, with the indices and weights chosen here.
package moe
