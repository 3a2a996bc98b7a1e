#include "privacy/dp/discrete_pld.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

namespace tessera::dp::internal {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Chernoff parameters (per unit of privacy loss) tried when sizing the FFT window: a geometric
// grid, factor 1.5, from 1e-2 to about 1e4.
constexpr double kMinChernoffLambda = 1e-2;
constexpr double kChernoffLambdaFactor = 1.5;
constexpr int kChernoffLambdas = 35;

// log(sum_i w_i exp(lambda * i * h)) over the nonzero masses.
double LogMgf(const std::vector<double>& log_mass, double lambda, double h) {
  double top = -kInf;
  for (size_t i = 0; i < log_mass.size(); ++i) {
    top = std::max(top, log_mass[i] + lambda * static_cast<double>(i) * h);
  }
  if (top == -kInf) return -kInf;
  double sum = 0.0;
  for (size_t i = 0; i < log_mass.size(); ++i) {
    sum += std::exp(log_mass[i] + lambda * static_cast<double>(i) * h - top);
  }
  return top + std::log(sum);
}

// In-place iterative radix-2 FFT of length a.size() (a power of two); inverse if `inverse`
// (unscaled: the caller divides by the length).
void Fft(std::vector<std::complex<double>>& a, bool inverse) {
  const size_t n = a.size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  // Twiddles for the largest stage; smaller stages stride through them.
  std::vector<std::complex<double>> w(n / 2);
  const double sign = inverse ? 1.0 : -1.0;
  for (size_t k = 0; k < n / 2; ++k) {
    const double angle = sign * 2.0 * std::numbers::pi * static_cast<double>(k) /
                         static_cast<double>(n);
    w[k] = {std::cos(angle), std::sin(angle)};
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const size_t half = len / 2;
    const size_t stride = n / len;
    for (size_t start = 0; start < n; start += len) {
      for (size_t k = 0; k < half; ++k) {
        const std::complex<double> t = w[k * stride] * a[start + k + half];
        a[start + k + half] = a[start + k] - t;
        a[start + k] += t;
      }
    }
  }
}

std::complex<double> Power(std::complex<double> z, uint64_t e) {
  std::complex<double> result = 1.0;
  while (e > 0) {
    if (e & 1) result *= z;
    z *= z;
    e >>= 1;
  }
  return result;
}

}  // namespace

Composed Compose(const Pld& one, uint64_t steps, double tail, int64_t max_points) {
  const double h = one.h;
  const double t = static_cast<double>(steps);
  const double n = static_cast<double>(one.mass.size() - 1);
  std::vector<double> log_mass(one.mass.size());
  for (size_t i = 0; i < one.mass.size(); ++i) {
    log_mass[i] = one.mass[i] > 0.0 ? std::log(one.mass[i]) : -kInf;
  }
  // Sums of relative indices (index - first_index) lie in [0, t n].
  std::vector<double> lambdas;
  std::vector<double> log_mgf_up;
  double hi = t * n;
  double lo = 0.0;
  const double log_inv_tail = -std::log(tail);
  for (int i = 0; i < kChernoffLambdas; ++i) {
    const double lambda = kMinChernoffLambda * std::pow(kChernoffLambdaFactor, i);
    const double up = LogMgf(log_mass, lambda, h);
    const double down = LogMgf(log_mass, -lambda, h);
    lambdas.push_back(lambda);
    log_mgf_up.push_back(up);
    // P(S >= u) <= exp(t up - lambda u h) and P(S <= u) <= exp(t down + lambda u h).
    hi = std::min(hi, (t * up + log_inv_tail) / (lambda * h));
    lo = std::max(lo, -(t * down + log_inv_tail) / (lambda * h));
  }
  lo = std::floor(std::max(lo, 0.0));
  hi = std::ceil(std::max(hi, lo));
  const double width = hi - lo + 1.0;
  if (!(width <= static_cast<double>(max_points))) {
    Composed retry;
    retry.grid_width = width;
    return retry;
  }
  const size_t size = std::bit_ceil(static_cast<size_t>(width));
  // The mass above the window's top index lo + size - 1.
  const double top = lo + static_cast<double>(size);
  double above = 0.0;
  if (top <= t * n) {
    double log_above = 0.0;
    for (size_t i = 0; i < lambdas.size(); ++i) {
      log_above = std::min(log_above, t * log_mgf_up[i] - lambdas[i] * top * h);
    }
    above = std::exp(log_above);
  }

  std::vector<std::complex<double>> a(size);
  for (size_t i = 0; i < one.mass.size(); ++i) a[i % size] += one.mass[i];
  Fft(a, /*inverse=*/false);
  for (std::complex<double>& z : a) z = Power(z, steps);
  Fft(a, /*inverse=*/true);

  Composed out;
  Pld& pld = out.pld;
  pld.h = h;
  pld.first_index = t * one.first_index + lo;
  pld.mass.resize(size);
  const uint64_t offset = static_cast<uint64_t>(std::fmod(lo, static_cast<double>(size)));
  const double scale = 1.0 / static_cast<double>(size);
  for (size_t r = 0; r < size; ++r) {
    const double v = a[(offset + r) % size].real() * scale;
    pld.mass[r] = std::max(v, 0.0);
  }
  // 1 - (1 - w_inf)^steps, plus the wrapped upper tail.
  pld.infinity_mass =
      std::min(1.0, -std::expm1(t * std::log1p(-one.infinity_mass)) + above);
  return out;
}

// delta(eps) of a discrete PLD: w_inf + sum over losses l > eps of w (1 - e^{eps - l}).
double DeltaOf(const Pld& pld, double eps) {
  double delta = pld.infinity_mass;
  for (size_t r = pld.mass.size(); r-- > 0;) {
    const double l = (pld.first_index + static_cast<double>(r)) * pld.h;
    if (l <= eps) break;
    delta += pld.mass[r] * -std::expm1(eps - l);
  }
  return std::min(delta, 1.0);
}

// The smallest eps >= 0 with delta(eps) <= delta for a discrete PLD. Walking down from the
// largest loss l, on [l - h, l] delta(eps) = A - e^eps B with A = w_inf + sum_{l' >= l} w and
// B = sum_{l' >= l} w e^{-l'}; Bs = e^l B keeps B in range.
double EpsilonOf(const Pld& pld, double delta) {
  if (pld.infinity_mass > delta) return kInf;
  const double decay = std::exp(-pld.h);
  double a = pld.infinity_mass;
  double bs = 0.0;
  for (size_t r = pld.mass.size(); r-- > 0;) {
    const double l = (pld.first_index + static_cast<double>(r)) * pld.h;
    if (l <= 0.0) break;
    a += pld.mass[r];
    bs = bs * decay + pld.mass[r];
    if (bs > 0.0 && a - bs * decay > delta) {
      return std::max(0.0, l + std::log((a - delta) / bs));
    }
  }
  return 0.0;
}

}  // namespace tessera::dp::internal
