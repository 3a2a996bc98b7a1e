#include "privacy/crypto/shamir.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/base/byte_order.h"
#include "privacy/crypto/random.h"

namespace tessera {
namespace crypto {
namespace {

constexpr uint64_t kP = kShamirPrime;
constexpr uint8_t kWireVersion = 1;
constexpr size_t kWireHeaderBytes = 1 + 4 + 4;

uint64_t Reduce(uint64_t v) {  // v < 2^64 -> v mod p
  v = (v & kP) + (v >> 61);
  return v >= kP ? v - kP : v;
}

uint64_t Add(uint64_t a, uint64_t b) { return Reduce(a + b); }
uint64_t Sub(uint64_t a, uint64_t b) { return Reduce(a + kP - b); }

uint64_t Mul(uint64_t a, uint64_t b) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  const uint64_t lo = static_cast<uint64_t>(r) & kP;
  const uint64_t hi = static_cast<uint64_t>(r >> 61);
  return Reduce(lo + hi);
}

uint64_t Inverse(uint64_t a) {  // a != 0; Fermat: a^(p-2)
  uint64_t result = 1;
  for (uint64_t e = kP - 2; e != 0; e >>= 1) {
    if (e & 1) result = Mul(result, a);
    a = Mul(a, a);
  }
  return result;
}

size_t LimbWidth(size_t secret_length, size_t limb) {
  return std::min(kShamirLimbBytes, secret_length - limb * kShamirLimbBytes);
}

// Validates x values, duplicates, y range and equal limb counts of `shares`;
// `limbs`, when set, is the required limb count.
absl::Status ValidateShares(absl::Span<const ShamirShare> shares,
                            std::optional<size_t> limbs) {
  absl::flat_hash_set<uint32_t> seen;
  for (const ShamirShare& share : shares) {
    if (share.x == 0 || share.x > kShamirMaxShares) {
      return absl::InvalidArgumentError(
          absl::StrCat("Shamir share x must be in [1, ", kShamirMaxShares,
                       "], got ", share.x));
    }
    if (!seen.insert(share.x).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate Shamir share x=", share.x));
    }
    if (!limbs.has_value()) limbs = share.y.size();
    if (share.y.size() != *limbs) {
      return absl::InvalidArgumentError(
          absl::StrCat("Shamir share x=", share.x, " has ", share.y.size(),
                       " limbs, expected ", *limbs));
    }
    for (uint64_t y : share.y) {
      if (y >= kP) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Shamir share x=", share.x, " has a value outside GF(p)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckThreshold(size_t num_shares, uint32_t threshold) {
  if (threshold == 0 || threshold > kShamirMaxShares) {
    return absl::InvalidArgumentError(
        absl::StrCat("Shamir threshold must be in [1, ", kShamirMaxShares,
                     "], got ", threshold));
  }
  if (num_shares < threshold) {
    return absl::FailedPreconditionError(absl::StrCat(
        "need at least ", threshold, " Shamir shares, got ", num_shares));
  }
  return absl::OkStatus();
}

// Lagrange coefficients for evaluating, at `at`, the polynomial through the
// points with x = `xs` (distinct, and distinct from `at` unless at == 0).
std::vector<uint64_t> LagrangeAt(absl::Span<const uint64_t> xs, uint64_t at) {
  const size_t t = xs.size();
  // numerator_i = prod_{j != i} (at - x_j), by prefix and suffix products.
  std::vector<uint64_t> prefix(t + 1, 1), suffix(t + 1, 1);
  for (size_t j = 0; j < t; ++j) prefix[j + 1] = Mul(prefix[j], Sub(at, xs[j]));
  for (size_t j = t; j > 0; --j) {
    suffix[j - 1] = Mul(suffix[j], Sub(at, xs[j - 1]));
  }
  std::vector<uint64_t> coeff(t);
  for (size_t i = 0; i < t; ++i) {
    uint64_t denominator = 1;
    for (size_t j = 0; j < t; ++j) {
      if (j != i) denominator = Mul(denominator, Sub(xs[i], xs[j]));
    }
    coeff[i] = Mul(Mul(prefix[i], suffix[i + 1]), Inverse(denominator));
  }
  return coeff;
}

// sum_i coeff[i] * shares[i].y[limb]
uint64_t Combine(absl::Span<const uint64_t> coeff,
                 absl::Span<const ShamirShare> shares, size_t limb) {
  uint64_t acc = 0;
  for (size_t i = 0; i < coeff.size(); ++i) {
    acc = Add(acc, Mul(coeff[i], shares[i].y[limb]));
  }
  return acc;
}

std::vector<uint64_t> Xs(absl::Span<const ShamirShare> shares) {
  std::vector<uint64_t> xs;
  xs.reserve(shares.size());
  for (const ShamirShare& s : shares) xs.push_back(s.x);
  return xs;
}


}  // namespace

size_t ShamirNumLimbs(size_t secret_length) {
  return (secret_length + kShamirLimbBytes - 1) / kShamirLimbBytes;
}

absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(absl::string_view secret,
                                                     uint32_t threshold,
                                                     uint32_t num_shares) {
  if (secret.empty()) {
    return absl::InvalidArgumentError("Shamir secret is empty");
  }
  if (num_shares > kShamirMaxShares) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kShamirMaxShares, " Shamir shares, got ", num_shares));
  }
  if (threshold == 0 || threshold > num_shares) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Shamir threshold must be in [1, ", num_shares, "], got ", threshold));
  }
  const size_t limbs = ShamirNumLimbs(secret.size());
  const size_t random_words = limbs * (threshold - 1);
  absl::StatusOr<std::string> random = RandomBytes(8 * random_words);
  if (!random.ok()) return random.status();

  std::vector<ShamirShare> shares(num_shares);
  for (uint32_t i = 0; i < num_shares; ++i) {
    shares[i].x = i + 1;
    shares[i].y.resize(limbs);
  }
  // coeffs[d] is the coefficient of x^d of the current limb's polynomial.
  std::vector<uint64_t> coeffs(threshold);
  for (size_t limb = 0; limb < limbs; ++limb) {
    const size_t width = LimbWidth(secret.size(), limb);
    coeffs[0] = LoadBigEndian(secret.data() + limb * kShamirLimbBytes, width);
    for (size_t d = 1; d < threshold; ++d) {
      const size_t word = limb * (threshold - 1) + (d - 1);
      uint64_t c = LoadBigEndian(random->data() + 8 * word, 8) & kP;
      while (c == kP) {  // uniform on [0, p): reject the one value 2^61 - 1
        absl::StatusOr<std::string> more = RandomBytes(8);
        if (!more.ok()) return more.status();
        c = LoadBigEndian(more->data(), 8) & kP;
      }
      coeffs[d] = c;
    }
    for (ShamirShare& share : shares) {
      uint64_t y = 0;  // Horner
      for (size_t d = threshold; d > 0; --d) {
        y = Add(Mul(y, share.x), coeffs[d - 1]);
      }
      share.y[limb] = y;
    }
  }
  std::fill(coeffs.begin(), coeffs.end(), 0);
  std::fill(random->begin(), random->end(), '\0');
  return shares;
}

absl::StatusOr<std::string> ShamirReconstruct(
    absl::Span<const ShamirShare> shares, uint32_t threshold,
    size_t secret_length) {
  if (absl::Status s = CheckThreshold(shares.size(), threshold); !s.ok()) {
    return s;
  }
  const size_t limbs = ShamirNumLimbs(secret_length);
  const absl::Span<const ShamirShare> used = shares.first(threshold);
  if (absl::Status s = ValidateShares(used, limbs); !s.ok()) return s;

  const std::vector<uint64_t> xs = Xs(used);
  const std::vector<uint64_t> coeff = LagrangeAt(xs, 0);
  std::string secret;
  secret.reserve(secret_length);
  for (size_t limb = 0; limb < limbs; ++limb) {
    const size_t width = LimbWidth(secret_length, limb);
    const uint64_t value = Combine(coeff, used, limb);
    if ((value >> (8 * width)) != 0) {
      return absl::DataLossError(
          absl::StrCat("Shamir shares are inconsistent: limb ", limb,
                       " does not fit in ", width, " bytes"));
    }
    AppendBigEndian(secret, value, width);
  }
  return secret;
}

absl::Status ShamirVerifyConsistent(absl::Span<const ShamirShare> shares,
                                    uint32_t threshold) {
  if (absl::Status s = CheckThreshold(shares.size(), threshold); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateShares(shares, std::nullopt); !s.ok()) return s;
  const absl::Span<const ShamirShare> base = shares.first(threshold);
  const std::vector<uint64_t> xs = Xs(base);
  for (const ShamirShare& extra : shares.subspan(threshold)) {
    const std::vector<uint64_t> coeff = LagrangeAt(xs, extra.x);
    for (size_t limb = 0; limb < extra.y.size(); ++limb) {
      if (Combine(coeff, base, limb) != extra.y[limb]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Shamir share x=", extra.x, " is inconsistent with the first ",
            threshold, " shares"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<bool>> ShamirOnPolynomial(absl::Span<const ShamirShare> base,
                                                     absl::Span<const ShamirShare> others) {
  if (base.empty() || base.size() > kShamirMaxShares) {
    return absl::InvalidArgumentError(
        absl::StrCat("need 1 to ", kShamirMaxShares, " base shares, got ", base.size()));
  }
  std::vector<ShamirShare> all(base.begin(), base.end());
  all.insert(all.end(), others.begin(), others.end());
  if (absl::Status s = ValidateShares(all, std::nullopt); !s.ok()) return s;
  // The Lagrange denominators depend only on the base: invert them once, so each further
  // point costs O(t) per limb instead of O(t^2).
  const std::vector<uint64_t> xs = Xs(base);
  const size_t t = xs.size();
  std::vector<uint64_t> inverse_denominator(t);
  for (size_t i = 0; i < t; ++i) {
    uint64_t d = 1;
    for (size_t j = 0; j < t; ++j) {
      if (j != i) d = Mul(d, Sub(xs[i], xs[j]));
    }
    inverse_denominator[i] = Inverse(d);
  }
  std::vector<bool> on(others.size(), true);
  std::vector<uint64_t> prefix(t + 1, 1), suffix(t + 1, 1), coeff(t);
  for (size_t k = 0; k < others.size(); ++k) {
    const uint64_t at = others[k].x;
    for (size_t j = 0; j < t; ++j) prefix[j + 1] = Mul(prefix[j], Sub(at, xs[j]));
    for (size_t j = t; j > 0; --j) suffix[j - 1] = Mul(suffix[j], Sub(at, xs[j - 1]));
    for (size_t i = 0; i < t; ++i) {
      coeff[i] = Mul(Mul(prefix[i], suffix[i + 1]), inverse_denominator[i]);
    }
    for (size_t limb = 0; limb < others[k].y.size() && on[k]; ++limb) {
      on[k] = Combine(coeff, base, limb) == others[k].y[limb];
    }
  }
  return on;
}

std::string SerializeShamirShare(const ShamirShare& share) {
  std::string out;
  out.reserve(kWireHeaderBytes + 8 * share.y.size());
  out.push_back(static_cast<char>(kWireVersion));
  AppendBigEndian(out, share.x, 4);
  AppendBigEndian(out, share.y.size(), 4);
  for (uint64_t y : share.y) AppendBigEndian(out, y, 8);
  return out;
}

absl::StatusOr<ShamirShare> ParseShamirShare(absl::string_view bytes) {
  if (bytes.size() < kWireHeaderBytes) {
    return absl::InvalidArgumentError("Shamir share truncated");
  }
  if (static_cast<uint8_t>(bytes[0]) != kWireVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown Shamir share version ", static_cast<uint8_t>(bytes[0])));
  }
  ShamirShare share;
  share.x = static_cast<uint32_t>(LoadBigEndian(bytes.data() + 1, 4));
  const uint64_t count = LoadBigEndian(bytes.data() + 5, 4);
  if ((bytes.size() - kWireHeaderBytes) != 8 * count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Shamir share of ", count, " limbs has ", bytes.size(), " bytes"));
  }
  share.y.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    share.y.push_back(LoadBigEndian(bytes.data() + kWireHeaderBytes + 8 * i, 8));
  }
  if (absl::Status s = ValidateShares({&share, 1}, std::nullopt); !s.ok()) {
    return s;
  }
  return share;
}

}  // namespace crypto
}  // namespace tessera
