// File: neighbor_graph.h
// The SecAgg+ communication graph (Bell et al., CCS 2020): each client masks with, and
// Shamir-shares its keys to, only its k neighbours. The graph is the Harary graph H(n, k)
// under a uniformly random relabelling of the clients, drawn deterministically from a
// 32-byte seed so the coordinator and every client can recompute it.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto graph, RandomRegularGraph(n, params.degree_k, seed));
//   for (uint32_t peer : graph[self]) { ... mask with peer ... }
#ifndef TESSERA_PRIVACY_SECAGG_NEIGHBOR_GRAPH_H_
#define TESSERA_PRIVACY_SECAGG_NEIGHBOR_GRAPH_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::secagg {

// Adjacency lists of an undirected simple k-regular graph on clients 0..n-1, each list
// sorted ascending. Construction: place the clients on a cycle in the order of a random
// permutation (Fisher-Yates driven by crypto::MaskPrg keyed by `seed32`, with rejection
// sampling so it is unbiased) and join each to the floor(k/2) nearest positions on either
// side; for odd k (which needs n even, since k * n must be even) also join each position p
// to the diametrically opposite p + n/2. Any single client's neighbour set is then a
// uniformly random k-subset of the others. k = n - 1 gives the complete graph (the seed is
// then unused).
// Errors: INVALID_ARGUMENT if n < 2, k is 0 or above n - 1, k * n is odd, or `seed32` is
// not 32 bytes; INTERNAL if the PRG fails.
absl::StatusOr<std::vector<std::vector<uint32_t>>> RandomRegularGraph(
    uint32_t n, uint32_t k, absl::string_view seed32);

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_NEIGHBOR_GRAPH_H_
