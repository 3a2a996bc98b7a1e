#include "core/base/log_math.h"

#include <math.h>  // lgamma_r (POSIX extension, not in <cmath>)

#include <algorithm>
#include <cmath>
#include <limits>

namespace tessera {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double LogGamma(double x) {
  int sign = 0;
  return lgamma_r(x, &sign);
}

}  // namespace

double LogAdd(double a, double b) {
  const double lo = std::min(a, b);
  const double hi = std::max(a, b);
  if (lo == kNegInf) return hi;
  return std::log1p(std::exp(lo - hi)) + hi;
}

double LogBinomial(uint64_t n, uint64_t k) {
  if (k > n) return kNegInf;
  const auto nd = static_cast<double>(n);
  const auto kd = static_cast<double>(k);
  return LogGamma(nd + 1) - LogGamma(kd + 1) - LogGamma(static_cast<double>(n - k) + 1);
}

}  // namespace tessera
