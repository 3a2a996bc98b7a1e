// File: random_source.h
// SecureRandom: the cryptographically secure bit source behind every DP noise sampler. It is
// the AES-256-CTR keystream of crypto::MaskPrg under a 32-byte seed, read in buffered blocks
// of 64-bit little-endian words. Create() seeds it from the OS DRBG (crypto::RandomBytes);
// FromSeed() gives a reproducible stream for tests and for values two parties must derive
// identically from a shared seed (e.g. the randomized Hadamard signs).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
//   uint64_t die = rng.UniformBelow(6);   // uniform on {0, ..., 5}
//   double u = rng.UniformUnit();         // uniform on [0, 1), 53 bits
//
// Not thread-safe; movable, not copyable. A moved-from SecureRandom may only be destroyed or
// assigned to.
#ifndef TESSERA_PRIVACY_DP_RANDOM_SOURCE_H_
#define TESSERA_PRIVACY_DP_RANDOM_SOURCE_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "privacy/crypto/prg.h"

namespace tessera::dp {

class SecureRandom {
 public:
  // Seed length in bytes (the AES-256 key of the keystream).
  static constexpr size_t kSeedBytes = 32;

  // A source seeded with 32 fresh bytes from the OS DRBG.
  // Errors: INTERNAL if the DRBG or OpenSSL fails.
  static absl::StatusOr<SecureRandom> Create();

  // A deterministic source: the same seed always yields the same stream.
  // Errors: INVALID_ARGUMENT unless `seed32` is 32 bytes; INTERNAL if OpenSSL fails.
  static absl::StatusOr<SecureRandom> FromSeed(absl::string_view seed32);

  SecureRandom(SecureRandom&&) noexcept = default;
  SecureRandom& operator=(SecureRandom&&) noexcept = default;
  SecureRandom(const SecureRandom&) = delete;
  SecureRandom& operator=(const SecureRandom&) = delete;
  ~SecureRandom();

  // The next 64 keystream bits, uniform on [0, 2^64). Word i of the stream equals word i of
  // crypto::MaskPrg::FillUint64 under the same seed.
  uint64_t NextUint64();

  // Uniform on {0, ..., n - 1}, exactly (no modulo bias): draws are rejected while they fall
  // in the last, partial copy of [0, n) inside [0, 2^64), so fewer than 2 draws are needed
  // on average for any n. Returns 0 when n is 0 or 1 without consuming randomness.
  uint64_t UniformBelow(uint64_t n);

  // Uniform on the 2^53 doubles k / 2^53, k in [0, 2^53): in [0, 1), never 1.
  double UniformUnit();

  // One fair bit (buffered: 64 bits per keystream word).
  bool NextBit();

 private:
  static constexpr size_t kBlockWords = 64;  // 512 keystream bytes per refill

  explicit SecureRandom(crypto::MaskPrg prg) : prg_(std::move(prg)) {}
  void Refill();

  crypto::MaskPrg prg_;
  std::array<uint64_t, kBlockWords> block_{};
  size_t next_word_ = kBlockWords;  // block_ is empty until the first draw
  uint64_t bits_ = 0;               // unused bits for NextBit, low bit first
  int bits_left_ = 0;
};

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_RANDOM_SOURCE_H_
