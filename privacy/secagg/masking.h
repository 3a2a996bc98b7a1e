// File: masking.h
// The mask arithmetic of Bonawitz et al. (CCS 2017) on vectors of integers mod 2^b (b from
// QuantizerParams). A client adds, for each neighbour, a pairwise mask expanded from their
// X25519 shared secret (added by the lower index, subtracted by the higher, so each pair
// cancels in the sum) and a self mask from its own seed. The coordinator removes the self
// masks of survivors and, for each dropped client whose private key it reconstructed from
// Shamir shares, the pairwise masks the survivors added for it.
//
// Every mask is the crypto::MaskPrg stream (64-bit little-endian words, reduced mod 2^b)
// under crypto::DeriveMaskSeed(secret, session_id, round, tensor_name), so masks never
// repeat across sessions, rounds or tensors.
//
// Example (client):
//   for (uint32_t peer : graph[self]) {
//     TESSERA_ASSIGN_OR_RETURN(std::string s, keys.SharedSecret(public_keys[peer]));
//     TESSERA_RETURN_IF_ERROR(AddPairwiseMask(absl::MakeSpan(q), self, peer, s, session,
//                                             round, "dense/w", params.modulus_mask));
//   }
//   TESSERA_RETURN_IF_ERROR(AddSelfMask(absl::MakeSpan(q), self_seed, session, round,
//                                       "dense/w", params.modulus_mask));
#ifndef TESSERA_PRIVACY_SECAGG_MASKING_H_
#define TESSERA_PRIVACY_SECAGG_MASKING_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tessera::secagg {

// All functions below: `modulus_mask` is 2^b - 1 for 1 <= b <= 64, and every result entry
// is reduced mod 2^b (entries of `vec` may be any uint64). Errors: INVALID_ARGUMENT for a
// `modulus_mask` not of that form and the per-function cases; errors of
// crypto::DeriveMaskSeed / MaskPrg::Create otherwise. On error `vec` is unchanged.

// vec += PRG(seed) if self_index < peer_index, vec -= PRG(seed) otherwise, where seed =
// DeriveMaskSeed(shared_secret, ...). Errors: INVALID_ARGUMENT if self_index == peer_index
// or `shared_secret` is empty.
absl::Status AddPairwiseMask(absl::Span<uint64_t> vec, uint32_t self_index,
                             uint32_t peer_index, absl::string_view shared_secret,
                             absl::string_view session_id, uint32_t round,
                             absl::string_view tensor_name, uint64_t modulus_mask);

// vec += PRG(DeriveMaskSeed(self_seed32, ...)). Errors: INVALID_ARGUMENT unless
// `self_seed32` is 32 bytes.
absl::Status AddSelfMask(absl::Span<uint64_t> vec, absl::string_view self_seed32,
                         absl::string_view session_id, uint32_t round,
                         absl::string_view tensor_name, uint64_t modulus_mask);

// The inverse of AddSelfMask: the coordinator's step for each surviving client whose self
// seed it reconstructed.
absl::Status RemoveSelfMask(absl::Span<uint64_t> vec, absl::string_view self_seed32,
                            absl::string_view session_id, uint32_t round,
                            absl::string_view tensor_name, uint64_t modulus_mask);

// A surviving neighbour of a dropped client, as the coordinator knows it.
struct SurvivingPeer {
  uint32_t index = 0;
  std::string public_key;  // its 32-byte X25519 public key from AdvertiseKeys
};

// Cancels, in the coordinator's running sum `sum`, the pairwise masks every surviving
// neighbour in `survivors` added for dropped client `dropped_index`: from the dropped
// client's reconstructed 32-byte private key it recomputes each shared secret and applies
// the mask the dropped client would have applied, which is the negation of the survivor's.
// Errors: INVALID_ARGUMENT for a private key that is not 32 bytes, a survivor equal to the
// dropped client, or a survivor public key that is not a valid X25519 key.
absl::Status RemovePairwiseMaskOfDropped(absl::Span<uint64_t> sum, uint32_t dropped_index,
                                         absl::string_view dropped_private_key32,
                                         absl::Span<const SurvivingPeer> survivors,
                                         absl::string_view session_id, uint32_t round,
                                         absl::string_view tensor_name,
                                         uint64_t modulus_mask);

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_MASKING_H_
