// File: secagg_round.h
// What the two secure aggregation fuzz targets share: a real 5-client round (SecAggHarness:
// real clients, server, X25519 keys, Ed25519 identity signatures) in which one message of
// one phase comes from the fuzzer, and the checks on how the round ends.
// Input: byte 0 picks the phase (1 + byte % 5: AdvertiseKeys .. Unmasking); byte 1 bit 0
// picks how the fuzzer's message is used (0: merged into the honest message with protobuf
// MergeFrom, so an empty message leaves the round honest; 1: replaces it), bits 1-7 the
// client (modulo 5); the rest is the serialized message.
#ifndef TESSERA_TESTS_FUZZ_SECAGG_ROUND_H_
#define TESSERA_TESTS_FUZZ_SECAGG_ROUND_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "privacy/secagg/secagg_harness_test_util.h"
#include "tests/fuzz/fuzz_util.h"

namespace tessera::fuzz {

inline constexpr uint32_t kSecAggClients = 5;
inline constexpr size_t kSecAggDim = 4;

inline secagg::ThreatModel SecAggThreatModel() {
  return {.num_clients = kSecAggClients, .dropout_fraction = 0.2, .corrupt_fraction = 0.0,
          .security_bits = 20};
}

struct SecAggFuzzInput {
  int phase = 0;
  bool replace = false;
  uint32_t client = 0;
};

// Nullopt when `msg` does not parse (or the input is too short).
template <typename Message>
std::optional<SecAggFuzzInput> ParseSecAggInput(const uint8_t* data, size_t size,
                                                Message* msg) {
  if (size < 2) return std::nullopt;
  if (!msg->ParseFromArray(data + 2, static_cast<int>(size - 2))) return std::nullopt;
  return SecAggFuzzInput{.phase = 1 + data[0] % 5, .replace = (data[1] & 1) != 0,
                         .client = (data[1] >> 1) % kSecAggClients};
}

template <typename Message>
void Apply(const SecAggFuzzInput& in, const Message& fuzzed, Message& honest) {
  if (in.replace) {
    honest = fuzzed;
  } else {
    honest.MergeFrom(fuzzed);
  }
}

// The round's outcome: an error naming why it aborted, or a result whose sums have the
// configured tensors, values below 2^b and ascending distinct survivors; with the fuzzer's
// message a no-op (an empty merge), the exact sum of every client's input.
inline void CheckOutcome(secagg::SecAggHarness& h, const absl::Status& ran, bool no_op) {
  Report(ran);
  if (no_op) Check(ran.ok(), "an honest round completes");
  if (!ran.ok()) {
    Check(!ran.message().empty(), "an aborted round says why");
    Check(!h.server().Result().ok(), "no result from an aborted round");
    return;
  }
  absl::StatusOr<secagg::SecAggResult> result = h.server().Result();
  Check(result.ok(), "a completed round has a result");
  Check(result->sums.size() == 2 && result->sums[0].values.size() == kSecAggDim &&
            result->sums[1].values.size() == 3,
        "sums have the configured tensors");
  for (size_t i = 0; i < result->survivors.size(); ++i) {
    Check(result->survivors[i] < kSecAggClients, "survivors are clients");
    Check(i == 0 || result->survivors[i - 1] < result->survivors[i], "survivors ascend");
  }
  if (no_op) {
    const secagg::SecAggResult plain = h.PlainSum(result->survivors);
    Check(result->survivors.size() == kSecAggClients, "every honest client survives");
    Check(result->weight_sum == plain.weight_sum, "the honest weight sum");
    for (size_t t = 0; t < 2; ++t) {
      Check(result->sums[t].values == plain.sums[t].values, "the honest sum");
    }
  }
}

// Puts the fuzzer's message in place of client `in.client`'s message of phase `in.phase`
// (ClientToServer) or of the coordinator's message to it when that phase closes
// (ServerToClient).
inline void InstallHook(secagg::SecAggHarness& h, const SecAggFuzzInput& in,
                        const secagg::v1::ClientToServer& fuzzed) {
  h.set_tamper([in, fuzzed](int phase, uint32_t client, secagg::v1::ClientToServer& msg) {
    if (phase == in.phase && client == in.client) Apply(in, fuzzed, msg);
  });
}
inline void InstallHook(secagg::SecAggHarness& h, const SecAggFuzzInput& in,
                        const secagg::v1::ServerToClient& fuzzed) {
  h.set_server_tamper([in, fuzzed](int phase, uint32_t client, secagg::v1::ServerToClient& msg) {
    if (phase == in.phase && client == in.client) Apply(in, fuzzed, msg);
  });
}

// One fuzz input against a real round: the fuzzer's `Message` in place (InstallHook), the
// round run to its end and judged by CheckOutcome; every client that aborted must say why.
template <typename Message>
int RunFuzzedRound(const uint8_t* data, size_t size) {
  Message fuzzed;
  const std::optional<SecAggFuzzInput> in = ParseSecAggInput(data, size, &fuzzed);
  if (!in.has_value()) return 0;
  secagg::SecAggHarness h(SecAggThreatModel(), kSecAggDim);
  InstallHook(h, *in, fuzzed);
  const absl::Status ran = h.RunAll();
  CheckOutcome(h, ran, !in->replace && fuzzed.ByteSizeLong() == 0);
  for (uint32_t c = 0; c < kSecAggClients; ++c) {
    Check(!h.client(c).IsAborted() || h.client(c).abort_reason().has_value(),
          "an aborted client says why");
  }
  return 0;
}

}  // namespace tessera::fuzz

#endif  // TESSERA_TESTS_FUZZ_SECAGG_ROUND_H_
