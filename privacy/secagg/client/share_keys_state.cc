#include "privacy/secagg/client/share_keys_state.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "privacy/crypto/aes_gcm.h"
#include "privacy/secagg/client/masked_input_state.h"
#include "privacy/secagg/masking.h"

namespace tessera::secagg {
namespace {

// Adds the pairwise masks with `secrets` (by peer) and the self mask to `vec`.
absl::Status Mask(const ClientContext& ctx, const std::map<uint32_t, std::string>& secrets,
                  absl::string_view name, absl::Span<uint64_t> vec) {
  const ClientConfig& cfg = ctx.config;
  for (const auto& [peer, secret] : secrets) {
    absl::Status s = AddPairwiseMask(vec, cfg.client_index, peer, secret, cfg.session_id,
                                     cfg.round, name, cfg.modulus_mask);
    if (!s.ok()) return s;
  }
  return AddSelfMask(vec, ctx.self_seed, cfg.session_id, cfg.round, name, cfg.modulus_mask);
}

}  // namespace

ClientTransition ShareKeysState::HandleMessage(const v1::ServerToClient& msg) {
  if (auto abort =
          CheckIncoming(*ctx_, msg, v1::SHARE_KEYS, v1::ServerToClient::kRelayedShares)) {
    return std::move(*abort);
  }
  const ClientConfig& cfg = ctx_->config;
  const uint32_t self = cfg.client_index;
  const v1::RelayedShares& relay = msg.relayed_shares();
  if (relay.recipient() != self) {
    return Abort(AbortReason::kMalformedMessage, "relayed shares for another client");
  }
  for (const v1::EncryptedShare& share : relay.shares()) {
    const uint32_t sender = share.sender();
    if (share.receiver() != self ||
        !std::binary_search(ctx_->neighbors.begin(), ctx_->neighbors.end(), sender) ||
        ctx_->held.count(sender) > 0) {
      return Abort(AbortReason::kMalformedMessage,
                   absl::StrCat("unexpected or duplicate share from client ", sender));
    }
    auto secret = ctx_->c_keys.SharedSecret(ctx_->peers[sender].c_pk);
    if (!secret.ok()) return Abort(AbortReason::kMalformedMessage, secret.status().message());
    auto key = DeriveShareKey(*secret, cfg.session_id, cfg.round);
    if (!key.ok()) return Abort(AbortReason::kInternal, key.status().message());
    auto opened = crypto::AesGcmDecrypt(*key, share.ciphertext(),
                                        ShareAad(cfg.session_id, cfg.round, sender, self));
    v1::SharePlaintext plain;
    if (!opened.ok() || !plain.ParseFromString(*opened) || plain.sender() != sender ||
        plain.receiver() != self) {
      return Abort(AbortReason::kMalformedMessage,
                   absl::StrCat("share from client ", sender, " does not decrypt"));
    }
    ctx_->held[sender] = {plain.s_sk_share(), plain.b_share()};
  }
  if (ctx_->held.size() < ctx_->threshold_t) {
    return Abort(AbortReason::kRosterTooSmall,
                 absl::StrCat("only ", ctx_->held.size(), " neighbours shared keys, t = ",
                              ctx_->threshold_t));
  }

  // Mask with exactly the neighbours whose shares arrived (they completed ShareKeys).
  std::map<uint32_t, std::string> secrets;
  for (const auto& [peer, unused] : ctx_->held) {
    auto secret = ctx_->s_keys.SharedSecret(ctx_->peers[peer].s_pk);
    if (!secret.ok()) return Abort(AbortReason::kMalformedMessage, secret.status().message());
    secrets[peer] = *std::move(secret);
  }
  v1::ClientToServer reply;
  v1::MaskedInput* out = reply.mutable_masked_input();
  *out->mutable_header() = MakeHeader(cfg.session_id, cfg.round, v1::MASKED_INPUT_COLLECTION);
  out->set_client_index(self);
  for (const QuantizedTensor& tensor : cfg.inputs) {
    std::vector<uint64_t> y = tensor.values;
    absl::Status s = Mask(*ctx_, secrets, tensor.name, absl::MakeSpan(y));
    if (!s.ok()) return Abort(AbortReason::kInternal, s.message());
    v1::MaskedTensor* t = out->add_tensors();
    t->set_name(tensor.name);
    t->mutable_values()->Add(y.begin(), y.end());
  }
  uint64_t weight = cfg.weight;
  absl::Status s = Mask(*ctx_, secrets, kWeightTensorName, absl::MakeSpan(&weight, 1));
  if (!s.ok()) return Abort(AbortReason::kInternal, s.message());
  out->set_masked_weight(weight);
  return {std::make_unique<MaskedInputState>(std::move(ctx_)), std::move(reply)};
}

}  // namespace tessera::secagg
