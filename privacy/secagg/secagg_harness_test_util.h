// File: secagg_harness_test_util.h
// An in-memory round of the secure aggregation protocol for tests: n SecAggClients and a
// SecAggServer exchanging messages phase by phase, with hooks to drop or tamper with
// client messages. Test-only.
#ifndef TESSERA_PRIVACY_SECAGG_SECAGG_HARNESS_TEST_UTIL_H_
#define TESSERA_PRIVACY_SECAGG_SECAGG_HARNESS_TEST_UTIL_H_

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "privacy/crypto/signature.h"
#include "privacy/secagg/client/secagg_client.h"
#include "privacy/secagg/server/secagg_server.h"

namespace tessera::secagg {

class SecAggHarness {
 public:
  // Phase numbers as v1::Phase: 1 AdvertiseKeys .. 4 ConsistencyCheck, 5 Unmasking.
  using Tamper = std::function<void(int phase, uint32_t client, v1::ClientToServer& msg)>;
  // Sees each server message sent when phase `phase` closes, before client `client` gets it.
  using ServerTamper =
      std::function<void(int phase, uint32_t client, v1::ServerToClient& msg)>;

  // `min_survivors`: the server's and every client's (0: only t).
  SecAggHarness(ThreatModel model, size_t dim, uint32_t modulus_bits = 20,
                uint32_t min_survivors = 0) {
    const uint32_t n = model.num_clients;
    mask_ = (uint64_t{1} << modulus_bits) - 1;
    std::mt19937_64 rng(n * 7919 + dim);
    std::uniform_int_distribution<uint64_t> value(0, mask_);
    for (uint32_t i = 0; i < n; ++i) signers_.push_back(*crypto::Ed25519Signer::Generate());
    VerifyFn verify = [this](uint32_t i, const v1::Identity& id, absl::string_view m,
                             absl::string_view sig) {
      if (i >= signers_.size()) return absl::NotFoundError("unknown client");
      if (id.ed25519_public_key() != signers_[i].public_key()) {
        return absl::PermissionDeniedError("not this client's identity");
      }
      return crypto::Ed25519Verify(id.ed25519_public_key(), m, sig);
    };
    ServerConfig sc{.session_id = kSession, .round = kRound, .threat_model = model,
                    .modulus_mask = mask_, .tensors = {{"a", dim}, {"b", 3}},
                    .verify = verify, .min_survivors = min_survivors};
    server_ = *SecAggServer::Create(sc);
    for (uint32_t i = 0; i < n; ++i) {
      ClientConfig cc;
      cc.client_index = i;
      cc.session_id = kSession;
      cc.round = kRound;
      cc.modulus_mask = mask_;
      std::vector<uint64_t> a(dim), b(3);
      for (auto& v : a) v = value(rng);
      for (auto& v : b) v = value(rng);
      cc.inputs = {{"a", a}, {"b", b}};
      cc.weight = 1 + i;
      cc.sign = [this, i](absl::string_view m) { return signers_[i].Sign(m); };
      cc.identity.set_ed25519_public_key(signers_[i].public_key());
      cc.verify = verify;
      cc.threat_model = model;
      cc.max_clients = n;
      cc.min_survivors = min_survivors;
      inputs_.push_back(cc.inputs);
      weights_.push_back(cc.weight);
      clients_.push_back(*SecAggClient::Create(std::move(cc)));
    }
    for (uint32_t i = 0; i < n; ++i) pending_.emplace_back(i, *clients_[i]->Start());
  }

  // Client `c` sends nothing from phase `phase` on.
  void DropAt(uint32_t c, int phase) { drop_at_[c] = phase; }
  void set_tamper(Tamper t) { tamper_ = std::move(t); }
  void set_server_tamper(ServerTamper t) { server_tamper_ = std::move(t); }

  // Delivers the pending client messages of `phase` to the server, closes the phase and
  // delivers the server's messages to the clients. Returns AdvancePhase's status.
  absl::Status Step(int phase) {
    for (auto& [c, msg] : pending_) {
      auto it = drop_at_.find(c);
      if (it != drop_at_.end() && it->second <= phase) continue;
      if (tamper_) tamper_(phase, c, msg);
      absl::Status s = server_->HandleMessage(c, msg);
      if (!s.ok()) server_status_[c] = s;
    }
    pending_.clear();
    absl::Status advanced = server_->AdvancePhase();
    for (auto& [to, msg] : server_->TakeOutgoing()) {
      if (server_tamper_) server_tamper_(phase, to, msg);
      last_sent_[to] = msg;
      auto reply = clients_[to]->HandleMessage(msg);
      if (reply.ok() && reply->has_value()) pending_.emplace_back(to, **std::move(reply));
    }
    return advanced;
  }

  absl::Status RunAll() {
    for (int phase = 1; phase <= 5; ++phase) {
      absl::Status s = Step(phase);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The plain modular sum of `who`'s inputs, as the server should output it.
  SecAggResult PlainSum(const std::vector<uint32_t>& who) const {
    SecAggResult r;
    r.sums = {{"a", std::vector<uint64_t>(inputs_[0][0].values.size(), 0)},
              {"b", std::vector<uint64_t>(3, 0)}};
    for (uint32_t c : who) {
      for (size_t t = 0; t < 2; ++t) {
        for (size_t j = 0; j < r.sums[t].values.size(); ++j) {
          r.sums[t].values[j] = (r.sums[t].values[j] + inputs_[c][t].values[j]) & mask_;
        }
      }
      r.weight_sum = (r.weight_sum + weights_[c]) & mask_;
    }
    r.survivors = who;
    return r;
  }

  // Client `i`'s identity signature of `message` (to play a corrupt client).
  std::string Sign(uint32_t i, absl::string_view message) { return *signers_[i].Sign(message); }

  SecAggServer& server() { return *server_; }
  SecAggClient& client(uint32_t i) { return *clients_[i]; }
  std::vector<std::pair<uint32_t, v1::ClientToServer>>& pending() { return pending_; }
  const std::map<uint32_t, absl::Status>& server_status() const { return server_status_; }
  const v1::ServerToClient& last_sent(uint32_t c) { return last_sent_[c]; }

  static constexpr char kSession[] = "session-7";
  static constexpr uint32_t kRound = 2;

 private:
  uint64_t mask_ = 0;
  std::vector<crypto::Ed25519Signer> signers_;
  std::vector<std::vector<QuantizedTensor>> inputs_;
  std::vector<uint64_t> weights_;
  std::unique_ptr<SecAggServer> server_;
  std::vector<std::unique_ptr<SecAggClient>> clients_;
  std::vector<std::pair<uint32_t, v1::ClientToServer>> pending_;
  std::map<uint32_t, int> drop_at_;
  std::map<uint32_t, absl::Status> server_status_;
  std::map<uint32_t, v1::ServerToClient> last_sent_;
  Tamper tamper_;
  ServerTamper server_tamper_;
};

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_SECAGG_HARNESS_TEST_UTIL_H_
