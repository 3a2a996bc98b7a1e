#include "privacy/secagg/neighbor_graph.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/prg.h"

namespace tessera::secagg {
namespace {

// Uniform in [0, bound) by rejection: draws below the largest multiple of bound only.
uint64_t UniformBelow(crypto::MaskPrg& prg, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x = 0;
  do {
    prg.FillUint64(absl::MakeSpan(&x, 1));
  } while (x >= limit);
  return x % bound;
}

}  // namespace

absl::StatusOr<std::vector<std::vector<uint32_t>>> RandomRegularGraph(
    uint32_t n, uint32_t k, absl::string_view seed32) {
  if (n < 2 || k == 0 || k > n - 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "neighbour graph: need n >= 2 and 1 <= k <= n - 1, got n = ", n, ", k = ", k));
  }
  if (k % 2 == 1 && n % 2 == 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "neighbour graph: no ", k, "-regular graph on ", n, " nodes (k * n is odd)"));
  }
  if (seed32.size() != crypto::kMaskSeedBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "neighbour graph: seed must be 32 bytes, got ", seed32.size()));
  }
  std::vector<std::vector<uint32_t>> adjacency(n);
  if (k == n - 1) {
    for (uint32_t v = 0; v < n; ++v) {
      adjacency[v].reserve(n - 1);
      for (uint32_t u = 0; u < n; ++u) {
        if (u != v) adjacency[v].push_back(u);
      }
    }
    return adjacency;
  }
  TESSERA_ASSIGN_OR_RETURN(crypto::MaskPrg prg, crypto::MaskPrg::Create(seed32));
  std::vector<uint32_t> at(n);  // at[position] = client
  std::iota(at.begin(), at.end(), 0u);
  for (uint32_t i = n - 1; i > 0; --i) {
    std::swap(at[i], at[UniformBelow(prg, uint64_t{i} + 1)]);
  }
  auto join = [&](uint32_t p, uint32_t q) {
    adjacency[at[p]].push_back(at[q]);
    adjacency[at[q]].push_back(at[p]);
  };
  // Offsets 1..k/2 < n/2 are distinct from their negations, so no edge repeats.
  for (uint32_t p = 0; p < n; ++p) {
    for (uint32_t d = 1; d <= k / 2; ++d) join(p, (p + d) % n);
  }
  if (k % 2 == 1) {
    for (uint32_t p = 0; p < n / 2; ++p) join(p, p + n / 2);
  }
  for (auto& list : adjacency) std::sort(list.begin(), list.end());
  return adjacency;
}

}  // namespace tessera::secagg
