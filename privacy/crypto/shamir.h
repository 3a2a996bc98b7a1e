// File: shamir.h
// t-of-n Shamir secret sharing of byte strings (Shamir 1979), used by secure
// aggregation to share each client's mask seed and key-agreement private key
// so the coordinator can unmask despite dropouts.
//
// Field and encoding: arithmetic is in GF(p), p = 2^61 - 1. The secret is cut
// into 7-byte limbs (big-endian within a limb; the last limb holds the
// remaining 1..7 bytes), each below 2^56 < p, and every limb is shared with
// its own random polynomial of degree threshold - 1. Share i is the
// evaluation at x = i (1..n), one field element per limb. A 32-byte secret
// therefore gives 5-element shares.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::vector<crypto::ShamirShare> shares,
//                            crypto::ShamirSplit(seed, /*threshold=*/3, 5));
//   ... any 3 of them ...
//   TESSERA_ASSIGN_OR_RETURN(std::string seed_again,
//       crypto::ShamirReconstruct(some, 3, seed.size()));
#ifndef TESSERA_PRIVACY_CRYPTO_SHAMIR_H_
#define TESSERA_PRIVACY_CRYPTO_SHAMIR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tessera {
namespace crypto {

inline constexpr uint64_t kShamirPrime = (uint64_t{1} << 61) - 1;
inline constexpr size_t kShamirLimbBytes = 7;
// Upper bound on n (and so on x): keeps Lagrange interpolation cheap and x in
// 16 bits.
inline constexpr uint32_t kShamirMaxShares = 65535;

struct ShamirShare {
  uint32_t x = 0;           // evaluation point, 1..kShamirMaxShares
  std::vector<uint64_t> y;  // one element of GF(p) per limb, each < p

  friend bool operator==(const ShamirShare&, const ShamirShare&) = default;
};

// The number of limbs (field elements per share) for a secret of
// `secret_length` bytes: ceil(secret_length / 7).
size_t ShamirNumLimbs(size_t secret_length);

// Splits `secret` into `num_shares` shares with x = 1..num_shares, any
// `threshold` of which reconstruct it and fewer reveal nothing.
// Errors: INVALID_ARGUMENT if `secret` is empty, `threshold` is 0 or greater
// than `num_shares`, or `num_shares` exceeds kShamirMaxShares; INTERNAL if the
// DRBG fails.
absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(absl::string_view secret,
                                                     uint32_t threshold,
                                                     uint32_t num_shares);

// Reconstructs the `secret_length`-byte secret from the first `threshold` of
// `shares` (Lagrange interpolation at 0). Extra shares are ignored: call
// ShamirVerifyConsistent to check them. A wrong share yields a wrong secret or,
// usually, the DATA_LOSS error below; it is never silently detectable from
// exactly `threshold` shares.
// REQUIRES: `secret_length` is the length of the secret that was split (a
// different length with the same limb count yields a wrong secret).
// Errors: INVALID_ARGUMENT if `threshold` is 0 or above kShamirMaxShares, a
// used share has x == 0 or x > kShamirMaxShares, a duplicate x, a y element
// >= p, or a limb count other than ShamirNumLimbs(secret_length);
// FAILED_PRECONDITION if fewer than `threshold` shares are given; DATA_LOSS if
// an interpolated limb does not fit its byte width (the shares are
// inconsistent or were split with another threshold).
absl::StatusOr<std::string> ShamirReconstruct(
    absl::Span<const ShamirShare> shares, uint32_t threshold,
    size_t secret_length);

// OK iff all `shares` lie on polynomials of degree < `threshold` (one per
// limb), i.e. each share beyond the first `threshold` agrees with the
// interpolation of those. With more than `threshold` shares, any single
// tampered share is detected. With exactly `threshold` shares this only
// validates the shares' form.
// Errors: the INVALID_ARGUMENT and FAILED_PRECONDITION cases of
// ShamirReconstruct (for every share, any limb count as long as all agree),
// and INVALID_ARGUMENT naming the first share (by x) that is off the
// polynomial.
absl::Status ShamirVerifyConsistent(absl::Span<const ShamirShare> shares,
                                    uint32_t threshold);

// For each share of `others`, whether it lies on the polynomials (one per limb) of degree
// < base.size() through the `base` shares: O(t^2) once, then O(t) per share and limb.
// Used to find which of many revealed shares are wrong.
// Errors: INVALID_ARGUMENT for an empty base (or more than kShamirMaxShares), and the
// share checks of ShamirReconstruct over base and others together (x range, duplicate x,
// y >= p, unequal limb counts).
absl::StatusOr<std::vector<bool>> ShamirOnPolynomial(absl::Span<const ShamirShare> base,
                                                     absl::Span<const ShamirShare> others);

// Wire format of one share: u8 version (1) || u32be x || u32be limb count ||
// limb count * u64be y.
std::string SerializeShamirShare(const ShamirShare& share);

// Inverse of SerializeShamirShare.
// Errors: INVALID_ARGUMENT on a wrong version, a size that does not match the
// limb count, x == 0 or x > kShamirMaxShares, or a y element >= p.
absl::StatusOr<ShamirShare> ParseShamirShare(absl::string_view bytes);

}  // namespace crypto
}  // namespace tessera

#endif  // TESSERA_PRIVACY_CRYPTO_SHAMIR_H_
