#include "privacy/secagg/client/secagg_client.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/random.h"
#include "privacy/crypto/x25519.h"
#include "privacy/secagg/client/advertise_keys_state.h"

namespace tessera::secagg {
namespace {

absl::Status ValidateConfig(const ClientConfig& c) {
  const uint64_t m = c.modulus_mask;
  if (c.session_id.empty()) return absl::InvalidArgumentError("empty session_id");
  if (m == 0 || (m & (m + 1)) != 0) {
    return absl::InvalidArgumentError("modulus_mask is not 2^b - 1");
  }
  if (!c.sign || !c.verify) return absl::InvalidArgumentError("sign and verify are required");
  if (c.inputs.empty()) return absl::InvalidArgumentError("no input tensors");
  if (c.weight > m) return absl::InvalidArgumentError("weight >= 2^b");
  std::set<std::string> names;
  for (const QuantizedTensor& t : c.inputs) {
    if (t.name.empty() || t.name == kWeightTensorName || !names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("bad or duplicate tensor name '",
                                                     t.name, "'"));
    }
    for (uint64_t v : t.values) {
      if (v > m) return absl::InvalidArgumentError(absl::StrCat("tensor ", t.name, ": >= 2^b"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggClient>> SecAggClient::Create(ClientConfig config) {
  TESSERA_RETURN_IF_ERROR(ValidateConfig(config));
  TESSERA_ASSIGN_OR_RETURN(crypto::X25519KeyPair c_keys, crypto::X25519KeyPair::Generate());
  TESSERA_ASSIGN_OR_RETURN(crypto::X25519KeyPair s_keys, crypto::X25519KeyPair::Generate());
  TESSERA_ASSIGN_OR_RETURN(std::string seed, crypto::RandomBytes(kSelfSeedBytes));

  v1::ClientToServer msg;
  v1::AdvertiseKeys* adv = msg.mutable_advertise_keys();
  *adv->mutable_header() = MakeHeader(config.session_id, config.round, v1::ADVERTISE_KEYS);
  adv->set_client_index(config.client_index);
  adv->set_c_pk(c_keys.public_key());
  adv->set_s_pk(s_keys.public_key());
  TESSERA_ASSIGN_OR_RETURN(
      std::string signature,
      config.sign(AdvertisePayload(config.session_id, config.round, config.client_index,
                                   c_keys.public_key(), s_keys.public_key())));
  adv->set_signature(std::move(signature));
  *adv->mutable_identity() = config.identity;

  auto ctx = std::make_unique<ClientContext>(std::move(config), std::move(c_keys),
                                             std::move(s_keys), std::move(seed));
  return std::unique_ptr<SecAggClient>(new SecAggClient(
      std::make_unique<AdvertiseKeysState>(std::move(ctx)), msg.SerializeAsString()));
}

absl::StatusOr<v1::ClientToServer> SecAggClient::Start() {
  absl::MutexLock l(&mu_);
  if (started_) return absl::FailedPreconditionError("secagg client already started");
  started_ = true;
  v1::ClientToServer msg;
  msg.ParseFromString(advertisement_);
  return msg;
}

absl::StatusOr<std::optional<v1::ClientToServer>> SecAggClient::HandleMessage(
    const v1::ServerToClient& msg) {
  absl::MutexLock l(&mu_);
  if (!started_) return absl::FailedPreconditionError("secagg client not started");
  if (state_->IsTerminal()) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg client is ", state_->Name(), ": ", state_->status().ToString()));
  }
  ClientTransition t = state_->HandleMessage(msg);
  state_ = std::move(t.next);
  if (state_->abort_reason().has_value()) return state_->status();
  return std::move(t.reply);
}

std::string SecAggClient::StateName() const {
  absl::MutexLock l(&mu_);
  return std::string(state_->Name());
}

bool SecAggClient::IsCompleted() const {
  absl::MutexLock l(&mu_);
  return state_->IsTerminal() && !state_->abort_reason().has_value();
}

bool SecAggClient::IsAborted() const {
  absl::MutexLock l(&mu_);
  return state_->abort_reason().has_value();
}

std::optional<AbortReason> SecAggClient::abort_reason() const {
  absl::MutexLock l(&mu_);
  return state_->abort_reason();
}

}  // namespace tessera::secagg
