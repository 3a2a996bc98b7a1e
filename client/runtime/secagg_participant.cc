#include "client/runtime/secagg_participant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "privacy/secagg/client/secagg_client.h"
#include "privacy/dp/ddg_codec.h"
#include "privacy/dp/random_source.h"
#include "client/runtime/update_delta.h"
#include "privacy/dp/update_dp.h"
#include "privacy/secagg/update_codec.h"

namespace tessera {
namespace {

const char* PhaseKey(const secagg::v1::ClientToServer& m) {
  switch (m.message_case()) {
    case secagg::v1::ClientToServer::kAdvertiseKeys: return "advertise";
    case secagg::v1::ClientToServer::kShareKeys: return "share";
    case secagg::v1::ClientToServer::kMaskedInput: return "masked";
    case secagg::v1::ClientToServer::kConsistencySignature: return "consistency";
    case secagg::v1::ClientToServer::kUnmaskResponse: return "unmask";
    default: return "";
  }
}

absl::Status Dump(const std::string& dir, const wire::v1::Task& task,
                  const std::vector<secagg::QuantizedTensor>& inputs, uint64_t weight) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path =
      absl::StrCat(dir, "/round-", task.round(), "-", task.secagg().session_id(), ".u64");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  auto put = [&out](uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out.write(b, 8);
  };
  for (const auto& t : inputs) {
    for (uint64_t v : t.values) put(v);
  }
  put(weight);
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("--secagg-dump-dir: cannot write ", path));
  return absl::OkStatus();
}

struct DpInput {
  std::vector<secagg::QuantizedTensor> inputs;
  uint64_t modulus_mask = 0;
};

// The secure aggregation input of a DP task (docs/privacy.md). CENTRAL: the update clipped
// to L2 norm clip_norm, quantized with weight 1 (the coordinator adds the noise).
// DISTRIBUTED: one vector, the distributed discrete Gaussian encoding (rotation, clip,
// scale, conditional rounding, this client's share of the noise) mod 2^modulus_bits.
absl::StatusOr<DpInput> EncodeDpInput(const wire::v1::Task& task, const ArrayRecord& delta,
                                      const secagg::QuantizerParams& params) {
  const wire::v1::DpTask& d = task.dp();
  const bool central = d.mode() == wire::v1::DifferentialPrivacyConfig::CENTRAL;
  // The distributed encoding clips after flattening.
  const ArrayRecord clipped = DpDelta(delta, central ? d.clip_norm() : 0);
  DpInput out;
  if (central) {
    TESSERA_ASSIGN_OR_RETURN(secagg::UniformSource uniform, secagg::SecureUniformSource());
    TESSERA_ASSIGN_OR_RETURN(out.inputs, secagg::QuantizeUpdate(clipped, 1, params, uniform));
    out.modulus_mask = params.modulus_mask;
    return out;
  }
  if (d.mode() != wire::v1::DifferentialPrivacyConfig::DISTRIBUTED) {
    return absl::InvalidArgumentError("the task's differential privacy mode is unknown");
  }
  const std::vector<float> flat = dp::FlattenFloat32(clipped);
  dp::DdgOptions o;
  o.clip = d.clip_norm();
  o.dimension = flat.size();
  o.modulus_bits = d.modulus_bits();
  o.noise_stddev = d.noise_stddev();
  o.min_clients = d.min_clients();
  o.max_clients = d.max_clients();
  TESSERA_ASSIGN_OR_RETURN(dp::DdgParams ddg, dp::MakeDdgParams(o));
  TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
  TESSERA_ASSIGN_OR_RETURN(dp::DdgEncoded encoded,
                           dp::EncodeDdg(flat, ddg, d.rotation_seed(), rng));
  LOG(INFO) << "distributed DP: update norm " << encoded.norm_before_clip << " clipped to "
            << d.clip_norm() << ", " << ddg.padded_dimension << " values mod 2^"
            << d.modulus_bits() << " with discrete Gaussian noise of variance "
            << ddg.sigma2_per_client;
  out.inputs.push_back({"ddg", std::move(encoded.values)});
  out.modulus_mask = ddg.modulus_mask;
  return out;
}

}  // namespace

SecAggTransport WithTransientRetries(SecAggTransport once, std::function<bool()> stop) {
  return [once = std::move(once), stop = std::move(stop)](
             const secagg::v1::ClientToServer& m,
             double timeout) -> absl::StatusOr<secagg::v1::ServerToClient> {
    const absl::Time give_up = absl::Now() + absl::Seconds(timeout);
    std::mt19937_64 rng(std::random_device{}());
    double backoff = 0.2;
    while (true) {
      absl::StatusOr<secagg::v1::ServerToClient> reply =
          once(m, absl::ToDoubleSeconds(give_up - absl::Now()));
      if (reply.ok()) return reply;
      const double wait = backoff * std::uniform_real_distribution<double>(0.5, 1.5)(rng);
      const absl::StatusCode code = reply.status().code();
      const bool transient = code == absl::StatusCode::kResourceExhausted ||
                             code == absl::StatusCode::kUnavailable ||
                             code == absl::StatusCode::kUnauthenticated;
      if (!transient || absl::Now() + absl::Seconds(wait) >= give_up || (stop && stop())) {
        return reply;
      }
      LOG(WARNING) << "secure aggregation message refused for now (" << reply.status()
                   << "); retrying in " << wait << " s";
      absl::SleepFor(absl::Seconds(wait));
      backoff = std::min(backoff * 2, 5.0);
    }
  };
}

absl::Status CheckThreatPolicy(const wire::v1::SecAggTask& task,
                               const SecAggParticipantOptions& options) {
  auto fraction_ok = [](double f) { return std::isfinite(f) && f >= 0 && f < 1; };
  if (!fraction_ok(task.corrupt_fraction()) || !fraction_ok(task.dropout_fraction())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the task's secure aggregation threat model is malformed: corrupt_fraction ",
        task.corrupt_fraction(), ", dropout_fraction ", task.dropout_fraction()));
  }
  if (task.corrupt_fraction() < options.min_corrupt_fraction) {
    return absl::PermissionDeniedError(absl::StrCat(
        "secure_aggregation.corrupt_fraction ", task.corrupt_fraction(),
        " of the task is below this client's --secagg-min-corrupt-fraction ",
        options.min_corrupt_fraction));
  }
  if (task.dropout_fraction() > options.max_dropout_fraction) {
    return absl::PermissionDeniedError(absl::StrCat(
        "secure_aggregation.dropout_fraction ", task.dropout_fraction(),
        " of the task is above this client's --secagg-max-dropout-fraction ",
        options.max_dropout_fraction));
  }
  if (task.security_bits() < options.min_security_bits) {
    return absl::PermissionDeniedError(absl::StrCat(
        "secure_aggregation.security_bits ", task.security_bits(),
        " of the task is below this client's --secagg-min-security-bits ",
        options.min_security_bits));
  }
  return absl::OkStatus();
}

absl::StatusOr<SecAggOutcome> RunSecAggParticipant(const wire::v1::Task& task,
                                                   const ArrayRecord& delta,
                                                   uint64_t num_examples,
                                                   const SecAggParticipantOptions& options,
                                                   const SecAggTransport& transport) {
  if (!task.has_secagg()) return absl::InvalidArgumentError("the task has no secagg section");
  const wire::v1::SecAggTask& st = task.secagg();
  TESSERA_RETURN_IF_ERROR(CheckThreatPolicy(st, options));
  TESSERA_ASSIGN_OR_RETURN(
      secagg::QuantizerParams params,
      secagg::MakeQuantizerParams({.clip = st.clip(), .max_weight = st.max_weight(),
                                   .max_clients = st.max_clients(),
                                   .value_bits = st.value_bits()}));
  // The FedAvg weight is the example count, capped where the quantizer's range ends; under
  // differential privacy every update weighs 1.
  const uint64_t cap = static_cast<uint64_t>(std::max(1.0, st.max_weight()));
  uint64_t weight = std::clamp<uint64_t>(num_examples, 1, cap);
  // Organization-level DP (central or distributed) changes the encoding; record-level DP
  // (DP-SGD, already applied by the training) only the weight.
  const bool org_dp = task.dp().mode() != wire::v1::DifferentialPrivacyConfig::MODE_UNSPECIFIED;
  if (num_examples > cap && !task.has_dp()) {
    LOG(WARNING) << "trained on " << num_examples << " examples; secure aggregation weighs "
                 << "this update as " << cap << " (secure_aggregation.max_examples)";
  }
  uint64_t modulus_mask = params.modulus_mask;
  std::vector<secagg::QuantizedTensor> inputs;
  if (org_dp) {
    weight = 1;
    TESSERA_ASSIGN_OR_RETURN(DpInput input, EncodeDpInput(task, delta, params));
    inputs = std::move(input.inputs);
    modulus_mask = input.modulus_mask;
  } else {
    if (task.has_dp()) weight = 1;  // record-level DP: every update weighs 1 too
    TESSERA_ASSIGN_OR_RETURN(secagg::UniformSource uniform, secagg::SecureUniformSource());
    TESSERA_ASSIGN_OR_RETURN(inputs, secagg::QuantizeUpdate(delta, weight, params, uniform));
  }
  if (!options.dump_dir.empty()) {
    TESSERA_RETURN_IF_ERROR(Dump(options.dump_dir, task, inputs, weight));
  }

  secagg::ClientConfig config;
  config.client_index = st.client_index();
  config.session_id = st.session_id();
  config.round = task.round();
  config.modulus_mask = modulus_mask;
  config.inputs = std::move(inputs);
  config.weight = weight;
  config.sign = options.signer.sign;
  config.identity = options.signer.identity;
  config.verify = options.verify;
  config.threat_model = {.num_clients = st.num_clients(),
                         .dropout_fraction = st.dropout_fraction(),
                         .corrupt_fraction = st.corrupt_fraction(),
                         .security_bits = st.security_bits()};
  config.max_clients = st.num_clients();
  // Distributed DP splits the noise over min_clients inputs: a smaller sum would be
  // under-noised, so this client neither signs nor unmasks one.
  if (org_dp) config.min_survivors = task.dp().min_clients();
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<secagg::SecAggClient> client,
                           secagg::SecAggClient::Create(std::move(config)));
  TESSERA_ASSIGN_OR_RETURN(secagg::v1::ClientToServer next, client->Start());

  SecAggOutcome outcome;
  // The first reply waits for every selected client to finish training.
  double timeout = task.deadline_seconds() + 30;
  while (true) {
    if (!options.drop_before.empty() && options.drop_before == PhaseKey(next)) {
      LOG(WARNING) << "fault injection: dropping out before " << options.drop_before;
      if (options.drop_by_exit) std::_Exit(17);
      while (true) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    TESSERA_ASSIGN_OR_RETURN(secagg::v1::ServerToClient reply, transport(next, timeout));
    timeout = 2 * st.phase_deadline_seconds() + 30;
    if (reply.has_completed()) outcome.survivors = reply.completed().num_survivors();
    absl::StatusOr<std::optional<secagg::v1::ClientToServer>> out = client->HandleMessage(reply);
    outcome.state = client->StateName();
    if (!out.ok()) return out.status();
    if (client->IsCompleted()) {
      outcome.completed = true;
      return outcome;
    }
    if (!out->has_value()) {
      return absl::InternalError(
          absl::StrCat("secure aggregation stopped in state ", client->StateName()));
    }
    next = **std::move(out);
  }
}

}  // namespace tessera
