// File: secagg_status.h
// How `tessera run status|watch|create` show secure aggregation (docs/secagg.md) to people:
// the run's threat model from its config, and per round the protocol's state, k and t, and
// who answered each phase. Every line is indented and ends in '\n'.
#ifndef TESSERA_TOOLS_CLI_SECAGG_STATUS_H_
#define TESSERA_TOOLS_CLI_SECAGG_STATUS_H_

#include <cstdint>
#include <string>

#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::cli {

// "  secure aggregation: on (dropout ≤ 0.1, corrupt ≤ 0.1, σ=40)\n"; "" when not enabled.
std::string SecAggConfigText(const wire::v1::SecureAggregationConfig& config);

// The full picture, for a round in progress or a failed attempt:
//   "  secure aggregation: state MaskedInput, k=9 t=5, survivors 8   (session 3f2a0c1d...)"
//   "    AdvertiseKeys  10/10"
//   "    ShareKeys       9/10  dropped: c7"
//   "    MaskedInput     8/9   rejected: c3 (bad signature)"
//   "    aborted: <abort_reason>"                 (only when abort_reason is set)
// k and t are left out until they are derived (k = 0), survivors while 0.
std::string SecAggDetailText(const wire::v1::SecAggRoundStatus& secagg);

// A completed round: "  secure aggregation: k=9 t=5, survivors 5/7\n", then one line per
// phase in which clients dropped or were rejected, in phase order:
//   "    dropped in ShareKeys: c7\n"
//   "    rejected in MaskedInput: c3 (bad signature)\n"
std::string SecAggCompactText(const wire::v1::SecAggRoundStatus& secagg, uint32_t selected);

// What to print under a round's table row: compact when ROUND_COMPLETED, detailed
// otherwise (in progress or ROUND_FAILED); "" when the round has no secagg status.
std::string SecAggRoundText(const wire::v1::RoundSummary& round);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_SECAGG_STATUS_H_
