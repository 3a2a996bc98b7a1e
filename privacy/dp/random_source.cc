// File: random_source.cc
#include "privacy/dp/random_source.h"

#include <string>
#include <utility>

#include "absl/types/span.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/random.h"

namespace tessera::dp {

absl::StatusOr<SecureRandom> SecureRandom::Create() {
  TESSERA_ASSIGN_OR_RETURN(std::string seed, crypto::RandomBytes(kSeedBytes));
  return FromSeed(seed);
}

absl::StatusOr<SecureRandom> SecureRandom::FromSeed(absl::string_view seed32) {
  if (seed32.size() != kSeedBytes) {
    return absl::InvalidArgumentError("SecureRandom seed must be 32 bytes");
  }
  TESSERA_ASSIGN_OR_RETURN(crypto::MaskPrg prg, crypto::MaskPrg::Create(seed32));
  return SecureRandom(std::move(prg));
}

SecureRandom::~SecureRandom() {
  // Do not leave unread keystream words (future randomness) lying in freed memory.
  volatile uint64_t* p = block_.data();
  for (size_t i = 0; i < kBlockWords; ++i) p[i] = 0;
  bits_ = 0;
}

void SecureRandom::Refill() {
  prg_.FillUint64(absl::MakeSpan(block_));
  next_word_ = 0;
}

uint64_t SecureRandom::NextUint64() {
  if (next_word_ == kBlockWords) Refill();
  return block_[next_word_++];
}

uint64_t SecureRandom::UniformBelow(uint64_t n) {
  if (n <= 1) return 0;
  // 2^64 mod n: the draws below this form the partial copy of [0, n) that is rejected, so
  // the accepted range [threshold, 2^64) holds a whole number of copies.
  const uint64_t threshold = (0 - n) % n;
  while (true) {
    const uint64_t x = NextUint64();
    if (x >= threshold) return x % n;
  }
}

double SecureRandom::UniformUnit() {
  return static_cast<double>(NextUint64() >> 11) * 0x1.0p-53;
}

bool SecureRandom::NextBit() {
  if (bits_left_ == 0) {
    bits_ = NextUint64();
    bits_left_ = 64;
  }
  const bool bit = (bits_ & 1) != 0;
  bits_ >>= 1;
  --bits_left_;
  return bit;
}

}  // namespace tessera::dp
