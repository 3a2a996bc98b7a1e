// File: secagg_client_fuzz.cc
// Fuzzes a client's handling of the coordinator's secure aggregation messages, phase by
// phase (Roster, RelayedShares, ConsistencyRequest, UnmaskRequest, RoundCompleted): the
// v1::ServerToClient one client gets when a phase closes is the fuzzer's (secagg_round.h),
// SecAggClient::HandleMessage handles it in a real round, and the round runs to its end.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/secagg_round.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tessera::fuzz::RunFuzzedRound<tessera::secagg::v1::ServerToClient>(data, size);
}
