// File: secagg_server_fuzz.cc
// Fuzzes the coordinator's handling of secure aggregation client messages, phase by phase:
// one client's serialized v1::ClientToServer of one phase is the fuzzer's (secagg_round.h),
// SecAggServer::HandleMessage judges it in a real round, and the round runs to its end.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/secagg_round.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tessera::fuzz::RunFuzzedRound<tessera::secagg::v1::ClientToServer>(data, size);
}
