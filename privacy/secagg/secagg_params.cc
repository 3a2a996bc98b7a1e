#include "privacy/secagg/secagg_params.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/log_math.h"
#include "privacy/crypto/shamir.h"

namespace tessera::secagg {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// tail[a] = ln P[X >= a] for a = 0..draws + 1, X ~ Hypergeometric(population, successes,
// draws): the number of marked clients among `draws` distinct others drawn at random.
std::vector<double> LogUpperTails(uint64_t population, uint64_t successes, uint64_t draws) {
  successes = std::min(successes, population);
  std::vector<double> tail(draws + 2, kNegInf);
  const uint64_t failures = population - successes;
  const uint64_t lo = draws > failures ? draws - failures : 0;
  const uint64_t hi = std::min(draws, successes);
  std::vector<double> pmf(hi + 1, kNegInf);
  pmf[lo] = LogBinomial(successes, lo) + LogBinomial(failures, draws - lo) -
            LogBinomial(population, draws);
  for (uint64_t j = lo; j < hi; ++j) {
    // p(j + 1) / p(j) = (K - j)(m - j) / ((j + 1)(N - K - m + j + 1)).
    pmf[j + 1] = pmf[j] + std::log(static_cast<double>(successes - j)) +
                 std::log(static_cast<double>(draws - j)) -
                 std::log(static_cast<double>(j + 1)) -
                 std::log(static_cast<double>(failures + j + 1 - draws));
  }
  // Below lo the pmf is zero, so tail[a] = tail[lo] = ln 1 (up to rounding).
  for (uint64_t a = hi + 1; a-- > 0;) tail[a] = LogAdd(tail[a + 1], pmf[a]);
  return tail;
}

// ln of n * P[some window of floor(k/2) consecutive Harary positions is all corrupt or
// dropped]: otherwise the honest survivors are connected (docs/secagg.md).
double LogDisconnectBound(uint32_t n, uint32_t k, uint64_t bad) {
  const uint64_t w = k / 2;
  bad = std::min<uint64_t>(bad, n);
  if (bad < w) return kNegInf;
  double s = std::log(static_cast<double>(n));
  for (uint64_t j = 0; j < w; ++j) {
    s += std::log(static_cast<double>(bad - j)) - std::log(static_cast<double>(n - j));
  }
  return s;
}

// ln of the union bound for (k, t), given the tails for the corrupt and dropped counts.
double LogFailure(uint32_t n, uint32_t k, uint32_t t, const std::vector<double>& corrupt_tail,
                  const std::vector<double>& dropped_tail, double log_disconnect) {
  const double log_n = std::log(static_cast<double>(n));
  // Privacy against a malicious coordinator fails if some client has c >= 2t - k corrupt
  // neighbours (then two disjoint groups of honest neighbours, each completed to t by the
  // same c, could be told different survivor sets; this also covers c >= t); recovery
  // fails if > k - t neighbours drop.
  const uint32_t privacy_at = 2 * t > k ? 2 * t - k : 0;
  double f = LogAdd(log_n + corrupt_tail[privacy_at], log_n + dropped_tail[k - t + 1]);
  return LogAdd(f, log_disconnect);
}

uint32_t CeilCount(double fraction, uint32_t n) {
  const double c = std::ceil(fraction * n - 1e-9);
  return static_cast<uint32_t>(std::clamp(c, 0.0, static_cast<double>(n)));
}

absl::StatusOr<SecAggParams> CompleteGraph(uint32_t n, uint32_t corrupt, uint32_t dropped,
                                           absl::string_view why) {
  // Worst case over clients: up to C corrupt and at least n - 1 - D surviving among the
  // n - 1 others, deterministically.
  const int64_t lo = MinMaliciousThreshold(n - 1, std::min(corrupt, n - 1));
  const int64_t hi = int64_t{n} - 1 - dropped;
  if (lo > hi) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "secagg params: no threshold exists (%s, complete graph): privacy against a "
        "malicious coordinator needs t > (k + C) / 2 = (%d + %d) / 2 but dropout robustness "
        "needs t <= %d surviving neighbours of %d; dropout + corrupt fractions are too large "
        "(corrupt + 2 * dropout must stay below 1)",
        why, n - 1, corrupt, hi, n - 1));
  }
  if (n - 1 > crypto::kShamirMaxShares) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secagg params: ", why, " and the complete graph on ", n,
        " clients needs more Shamir shares than ", crypto::kShamirMaxShares));
  }
  return SecAggParams{.num_clients = n,
                      .degree_k = n - 1,
                      .threshold_t = static_cast<uint32_t>((lo + hi) / 2),
                      .complete_graph = true,
                      .log2_failure = kNegInf};
}

}  // namespace

uint32_t MinMaliciousThreshold(uint32_t k, uint32_t corrupt_neighbors) {
  return static_cast<uint32_t>((uint64_t{k} + corrupt_neighbors) / 2 + 1);
}

uint32_t CorruptCount(const ThreatModel& model) {
  const uint32_t selected = std::max(model.num_selected, model.num_clients);
  return std::min(CeilCount(model.corrupt_fraction, selected), model.num_clients);
}

double Log2SparseFailureBound(uint32_t n, uint32_t k, uint32_t t, uint32_t corrupt,
                              uint32_t dropped) {
  const std::vector<double> ct = LogUpperTails(n - 1, corrupt, k);
  const std::vector<double> dt = LogUpperTails(n - 1, dropped, k);
  return LogFailure(n, k, t, ct, dt, LogDisconnectBound(n, k, uint64_t{corrupt} + dropped)) /
         std::log(2.0);
}

absl::StatusOr<SecAggParams> DeriveParams(const ThreatModel& model) {
  const uint32_t n = model.num_clients;
  if (n < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg params: need at least 2 clients, got ", n));
  }
  auto fraction_ok = [](double f) { return std::isfinite(f) && f >= 0 && f < 1; };
  if (!fraction_ok(model.dropout_fraction) || !fraction_ok(model.corrupt_fraction)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg params: dropout_fraction and corrupt_fraction must be in [0, 1), got ",
        model.dropout_fraction, " and ", model.corrupt_fraction));
  }
  if (model.security_bits < 1 || model.security_bits > 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg params: security_bits must be in 1..128, got ", model.security_bits));
  }
  const uint32_t corrupt = CorruptCount(model);
  const uint32_t selected = std::max(model.num_selected, n);
  const uint32_t tolerated = CeilCount(model.dropout_fraction, selected);
  const uint32_t dropped = tolerated > selected - n ? tolerated - (selected - n) : 0;
  if (n <= kCompleteGraphMaxClients) {
    return CompleteGraph(n, corrupt, dropped, "small cohort");
  }
  const double target = -static_cast<double>(model.security_bits) * std::log(2.0);
  const uint32_t max_k = std::min(n - 2, kMaxSparseDegree);
  for (uint32_t k = 2; k <= max_k; k += 2) {
    const double log_disconnect = LogDisconnectBound(n, k, uint64_t{corrupt} + dropped);
    if (log_disconnect > target) continue;
    const std::vector<double> ct = LogUpperTails(n - 1, corrupt, k);
    const std::vector<double> dt = LogUpperTails(n - 1, dropped, k);
    std::vector<double> f(k + 1);
    double best = std::numeric_limits<double>::infinity();
    for (uint32_t t = 1; t <= k; ++t) {
      f[t] = LogFailure(n, k, t, ct, dt, log_disconnect);
      best = std::min(best, f[t]);
    }
    if (best <= target) {
      // The t attaining the minimum form a range when both tails vanish (small C and D);
      // its midpoint leaves the most margin on both sides.
      uint32_t first = 0, last = 0;
      for (uint32_t t = 1; t <= k; ++t) {
        if (f[t] <= best) {
          if (first == 0) first = t;
          last = t;
        }
      }
      const uint32_t best_t = first + (last - first) / 2;
      return SecAggParams{.num_clients = n,
                          .degree_k = k,
                          .threshold_t = best_t,
                          .complete_graph = false,
                          .log2_failure = best / std::log(2.0)};
    }
  }
  return CompleteGraph(n, corrupt, dropped,
                       absl::StrCat("no sparse degree k <= ", max_k, " reaches 2^-",
                                    model.security_bits));
}

}  // namespace tessera::secagg
