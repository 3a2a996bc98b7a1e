// Test helper: the epsilon that k rounds of a Gaussian mechanism at q = 1 spend, written
// out from its closed form so that ledger tests do not check the accountant against itself.
// Shared by run_manager_ledger_test.cc and tests/integration/ledger_crash_test.cc.
#ifndef TESSERA_COORDINATOR_ROUND_GAUSSIAN_EPSILON_FOR_TESTS_H_
#define TESSERA_COORDINATOR_ROUND_GAUSSIAN_EPSILON_FOR_TESTS_H_

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace tessera::coordinator {

// k rounds with noise multiplier z, every client sampled: RDP alpha k / (2 z^2) (Mironov
// 2017; a discrete Gaussian is charged the same, Canonne, Kamath, Steinke 2020) at the
// ledger's orders (1.1 ... 10.9, 11 ... 63, 128, 256, 512, 1024), converted with
// eps = rdp + log(1 - 1/alpha) - (log delta + log alpha) / (alpha - 1) (Balle et al. 2020)
// and minimized over the orders (orders up to 1.01 skipped, as dp_accounting does).
inline double GaussianEpsilonForTests(int k, double z, double delta) {
  std::vector<double> orders;
  for (int x = 1; x <= 99; ++x) orders.push_back(1.0 + x / 10.0);
  for (int a = 11; a <= 63; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0, 1024.0}) orders.push_back(a);
  double best = std::numeric_limits<double>::infinity();
  for (double a : orders) {
    if (a <= 1.01) continue;
    const double rdp = a * k / (2 * z * z);
    best = std::min(best, std::max(0.0, rdp + std::log1p(-1 / a) -
                                            (std::log(delta) + std::log(a)) / (a - 1)));
  }
  return best;
}

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_GAUSSIAN_EPSILON_FOR_TESTS_H_
