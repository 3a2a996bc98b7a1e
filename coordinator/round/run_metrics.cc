#include "coordinator/round/run_metrics.h"

namespace tessera::coordinator {

void RunMetrics::AddRound(const wire::v1::RoundSummary& r) {
  ++rounds_started;
  rounds_completed += r.state() == wire::v1::ROUND_COMPLETED;
  rounds_failed += r.state() == wire::v1::ROUND_FAILED;
  const bool ended = r.state() == wire::v1::ROUND_COMPLETED || r.state() == wire::v1::ROUND_FAILED;
  if (ended) {
    ++seconds_count;
    seconds_sum += r.seconds();
    for (size_t i = 0; i < kRoundSecondsBuckets.size(); ++i) {
      seconds_buckets[i] += r.seconds() <= kRoundSecondsBuckets[i];
    }
    for (const wire::v1::RoundPhase& p : r.phases()) {
      PhaseTotal& total = phases[p.phase()];
      total.seconds += p.seconds();
      ++total.count;
    }
    if (r.has_secagg()) secagg_survivors = r.secagg().survivors();
  }
  bytes_in += r.bytes_up();
  bytes_out += r.bytes_down();
  latest_clients = Clients{r.selected(), r.reported(), r.dropped()};
  for (const wire::v1::SecAggPhaseStatus& p : r.secagg().phases()) {
    secagg_dropouts[p.phase()] += static_cast<uint64_t>(p.dropped_size() + p.rejected_size());
  }
  if (r.has_privacy() && r.privacy().released()) {
    latest_released = Released{r.privacy().unclipped_fraction(), r.privacy().clip_norm()};
  }
  for (const wire::v1::SitePrivacy& site : r.site_privacy()) {
    if (!site.refused()) {
      site_epsilon[site.client()] = site.epsilon();
    } else {
      site_epsilon.emplace(site.client(), site.epsilon());
    }
  }
}

}  // namespace tessera::coordinator
