#include "privacy/secagg/masking.h"

#include <algorithm>
#include <array>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/prg.h"
#include "privacy/crypto/x25519.h"

namespace tessera::secagg {
namespace {

absl::Status CheckModulusMask(uint64_t modulus_mask) {
  if (modulus_mask == 0 || (modulus_mask & (modulus_mask + 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "masking: modulus mask must be 2^b - 1 with b >= 1, got ", modulus_mask));
  }
  return absl::OkStatus();
}

enum class Sign { kAdd, kSubtract };

// vec = vec +/- PRG(DeriveMaskSeed(secret, ...)) mod 2^b, streamed in fixed-size chunks.
absl::Status ApplyMask(absl::Span<uint64_t> vec, absl::string_view secret, Sign sign,
                       absl::string_view session_id, uint32_t round,
                       absl::string_view tensor_name, uint64_t modulus_mask) {
  TESSERA_RETURN_IF_ERROR(CheckModulusMask(modulus_mask));
  TESSERA_ASSIGN_OR_RETURN(std::string seed,
                           crypto::DeriveMaskSeed(secret, session_id, round, tensor_name));
  TESSERA_ASSIGN_OR_RETURN(crypto::MaskPrg prg, crypto::MaskPrg::Create(seed));
  std::array<uint64_t, 512> chunk;
  for (size_t begin = 0; begin < vec.size(); begin += chunk.size()) {
    const size_t len = std::min(chunk.size(), vec.size() - begin);
    prg.FillUint64(absl::MakeSpan(chunk.data(), len));
    for (size_t i = 0; i < len; ++i) {
      uint64_t& v = vec[begin + i];
      v = (sign == Sign::kAdd ? v + chunk[i] : v - chunk[i]) & modulus_mask;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSelfSeed(absl::string_view self_seed32) {
  if (self_seed32.size() != crypto::kMaskSeedBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "masking: self-mask seed must be 32 bytes, got ", self_seed32.size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AddPairwiseMask(absl::Span<uint64_t> vec, uint32_t self_index,
                             uint32_t peer_index, absl::string_view shared_secret,
                             absl::string_view session_id, uint32_t round,
                             absl::string_view tensor_name, uint64_t modulus_mask) {
  if (self_index == peer_index) {
    return absl::InvalidArgumentError(
        absl::StrCat("masking: client ", self_index, " cannot mask with itself"));
  }
  if (shared_secret.empty()) {
    return absl::InvalidArgumentError("masking: shared secret is empty");
  }
  return ApplyMask(vec, shared_secret, self_index < peer_index ? Sign::kAdd : Sign::kSubtract,
                   session_id, round, tensor_name, modulus_mask);
}

absl::Status AddSelfMask(absl::Span<uint64_t> vec, absl::string_view self_seed32,
                         absl::string_view session_id, uint32_t round,
                         absl::string_view tensor_name, uint64_t modulus_mask) {
  TESSERA_RETURN_IF_ERROR(CheckSelfSeed(self_seed32));
  return ApplyMask(vec, self_seed32, Sign::kAdd, session_id, round, tensor_name,
                   modulus_mask);
}

absl::Status RemoveSelfMask(absl::Span<uint64_t> vec, absl::string_view self_seed32,
                            absl::string_view session_id, uint32_t round,
                            absl::string_view tensor_name, uint64_t modulus_mask) {
  TESSERA_RETURN_IF_ERROR(CheckSelfSeed(self_seed32));
  return ApplyMask(vec, self_seed32, Sign::kSubtract, session_id, round, tensor_name,
                   modulus_mask);
}

absl::Status RemovePairwiseMaskOfDropped(absl::Span<uint64_t> sum, uint32_t dropped_index,
                                         absl::string_view dropped_private_key32,
                                         absl::Span<const SurvivingPeer> survivors,
                                         absl::string_view session_id, uint32_t round,
                                         absl::string_view tensor_name,
                                         uint64_t modulus_mask) {
  TESSERA_RETURN_IF_ERROR(CheckModulusMask(modulus_mask));
  TESSERA_ASSIGN_OR_RETURN(crypto::X25519KeyPair keys,
                           crypto::X25519KeyPair::FromPrivate(dropped_private_key32));
  // Compute every secret first so an invalid survivor leaves `sum` unchanged.
  std::vector<std::string> secrets;
  secrets.reserve(survivors.size());
  for (const SurvivingPeer& s : survivors) {
    if (s.index == dropped_index) {
      return absl::InvalidArgumentError(absl::StrCat(
          "masking: dropped client ", dropped_index, " listed among its survivors"));
    }
    TESSERA_ASSIGN_OR_RETURN(std::string secret, keys.SharedSecret(s.public_key));
    secrets.push_back(std::move(secret));
  }
  for (size_t i = 0; i < survivors.size(); ++i) {
    // The dropped client's own mask for this peer is the negation of the peer's.
    TESSERA_RETURN_IF_ERROR(AddPairwiseMask(sum, dropped_index, survivors[i].index,
                                            secrets[i], session_id, round, tensor_name,
                                            modulus_mask));
  }
  return absl::OkStatus();
}

}  // namespace tessera::secagg
