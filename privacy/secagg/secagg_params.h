// File: secagg_params.h
// SecAgg+ parameters (Bell et al., CCS 2020) derived from the operator's threat model rather
// than set by hand: the number of neighbours k each client masks with and shares its keys
// to, and the Shamir threshold t. docs/secagg.md ("Choosing k and t") gives the formulas.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(SecAggParams p,
//       DeriveParams({.num_clients = 1000, .dropout_fraction = 0.1,
//                     .corrupt_fraction = 0.1}));
//   // p.degree_k neighbours per client, keys shared t-of-k.
#ifndef TESSERA_PRIVACY_SECAGG_SECAGG_PARAMS_H_
#define TESSERA_PRIVACY_SECAGG_SECAGG_PARAMS_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace tessera::secagg {

// Up to this many clients the complete graph is always used: its bounds on t hold
// deterministically, for any choice of corrupt and dropped clients (the sparse bounds are
// probabilistic and assume those sets do not depend on the graph), while n - 1 <= 29 key
// agreements and shares per client are already cheap; the sparse degree at such n
// (about 18 at n = 31 for 10% / 10%) would save little.
inline constexpr uint32_t kCompleteGraphMaxClients = 30;

// The largest sparse degree searched. Beyond it the per-client cost is no longer
// logarithmic, and the complete graph (with deterministic guarantees) is used instead.
inline constexpr uint32_t kMaxSparseDegree = 4096;

struct ThreatModel {
  uint32_t num_clients = 0;      // n: the clients in the graph (e.g. those that advertised)
  // The clients selected for the session before any dropped out (0: num_clients). The
  // tolerated counts are fractions of it, and the selected clients that never reached the
  // graph have used up that many of the tolerated dropouts.
  uint32_t num_selected = 0;
  double dropout_fraction = 0;   // tolerated fraction of clients that drop out, [0, 1)
  double corrupt_fraction = 0;   // tolerated colluding clients incl. coordinator view, [0, 1)
  uint32_t security_bits = 40;   // statistical security parameter sigma, 1..128
};

struct SecAggParams {
  uint32_t num_clients = 0;
  uint32_t degree_k = 0;      // neighbours per client; n - 1 means the complete graph
  uint32_t threshold_t = 0;   // Shamir threshold over a client's k neighbours
  bool complete_graph = false;
  // log2 of the union-bounded failure probability (privacy, dropout robustness or
  // connectivity among honest survivors) of the chosen (k, t); -infinity when none is
  // possible (the complete graph, or a sparse graph whose tails and windows are all empty).
  double log2_failure = 0;
};

// Chooses the smallest k (even, so the Harary construction of neighbor_graph.h applies)
// whose failure probability is at most 2^-sigma for some t, where privacy fails when a
// client has at least 2t - k corrupt neighbours (the malicious-coordinator bound of
// MinMaliciousThreshold), and the t minimising it (the
// middle of the minimising range when several t reach it, e.g. probability 0); the
// complete graph when n <= kCompleteGraphMaxClients or no sparse k <= min(n - 2,
// kMaxSparseDegree) works. With N = max(num_selected, n), the tolerated counts are
// C = ceil(corrupt_fraction * N) and D = max(0, ceil(dropout_fraction * N) - (N - n)). The corrupt and dropped sets must not depend on the
// graph's random relabelling (its seed is drawn after they are fixed).
// Errors: INVALID_ARGUMENT for n < 2, a fraction outside [0, 1) or not finite, or
// security_bits outside 1..128; FAILED_PRECONDITION (naming the bound that fails) when no
// (k, t) satisfies both t > (k + corrupt neighbours) / 2 and t <= surviving neighbours, e.g. when
// dropout + corrupt fractions are too large, or the complete graph would need more than
// 65535 Shamir shares.
absl::StatusOr<SecAggParams> DeriveParams(const ThreatModel& model);

// The smallest threshold t with t > (k + c) / 2: no two disjoint sets of honest neighbours
// can then each be completed to t by the same c corrupt neighbours, so a coordinator that
// shows some neighbours of a client one survivor set and the others another cannot collect
// t shares of both of its secrets (docs/secagg.md, "Threat model").
uint32_t MinMaliciousThreshold(uint32_t k, uint32_t corrupt_neighbors);

// C = ceil(corrupt_fraction * max(num_selected, num_clients)), the corrupt clients the
// model tolerates.
uint32_t CorruptCount(const ThreatModel& model);

// log2 of the failure probability bound of docs/secagg.md for a sparse Harary graph of
// degree k and threshold t with C corrupt and D dropped among n clients (exposed for tests
// and for operators checking hand-set values). REQUIRES: 1 <= t <= k <= n - 1.
double Log2SparseFailureBound(uint32_t n, uint32_t k, uint32_t t, uint32_t corrupt,
                              uint32_t dropped);

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SECAGG_PARAMS_H_
