// File: round_phases.h
// Per-phase wall time of a round attempt (RoundSummary.phases), for `tessera run status`,
// the HTML report and the Prometheus tessera_round_phase_seconds summary.
#ifndef TESSERA_COORDINATOR_ROUND_ROUND_PHASES_H_
#define TESSERA_COORDINATOR_ROUND_ROUND_PHASES_H_

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tessera/wire/v1/control.pb.h"

namespace tessera::coordinator {

// A config's seconds as a duration (to the millisecond).
inline absl::Duration Seconds(double s) {
  return absl::Milliseconds(static_cast<int64_t>(s * 1000));
}

// Starts the attempt's clock.
inline void StartPhases(wire::v1::RoundSummary* summary) {
  summary->set_started_unix_ms(absl::ToUnixMillis(absl::Now()));
  summary->clear_phases();
}

// Ends the phase in progress as `phase`: the time since the attempt started, less the
// phases already recorded; the next phase starts now.
inline void EndPhase(wire::v1::RoundSummary* summary, absl::string_view phase) {
  double elapsed =
      static_cast<double>(absl::ToUnixMillis(absl::Now()) - summary->started_unix_ms()) / 1e3;
  for (const auto& p : summary->phases()) elapsed -= p.seconds();
  wire::v1::RoundPhase* p = summary->add_phases();
  p->set_phase(std::string(phase));
  p->set_seconds(elapsed > 0 ? elapsed : 0);
}

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_ROUND_PHASES_H_
