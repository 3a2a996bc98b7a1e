// RunManager::SelectClients: who trains in a round.
#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/round/run_manager.h"
#include "coordinator/round/run_manager_internal.h"
#include "core/base/status_macros.h"

namespace tessera::coordinator {
namespace {

// Clients to select this round: a count or a fraction of the connected ones.
size_t TargetClients(const wire::v1::SelectionConfig& sel, size_t connected) {
  if (sel.clients_per_round() > 0) return sel.clients_per_round();
  const double fraction = sel.fraction() > 0 ? sel.fraction() : 1.0;
  return std::max<size_t>(sel.min_clients(),
                          static_cast<size_t>(std::ceil(fraction * connected)));
}

}  // namespace

std::vector<std::string> RunManager::SelectableClients(const std::shared_ptr<Run>& run,
                                                       size_t* exhausted) {
  return run->record_privacy->Select(run->governance->Select(registry_->Connected()),
                                     exhausted);
}

absl::StatusOr<std::vector<std::string>> RunManager::SelectClients(
    const std::shared_ptr<Run>& run, const wire::v1::RunConfig& config,
    const wire::v1::RoundSummary& summary) {
  const auto& sel = config.selection();
  const size_t min_clients = std::max<uint32_t>(1, sel.min_clients());
  const absl::Time wait_until = absl::Now() + Seconds(sel.wait_for_clients_seconds());
  // DP samples from the whole population, so it waits (up to the timeout) for all of it.
  const size_t want = run->privacy != nullptr ? run->privacy->population()
                      : sel.clients_per_round() > 0 ? sel.clients_per_round()
                                                    : min_clients;
  auto stop = [&] { return run->stop || shutting_down_; };
  size_t connected = registry_->AwaitConnected(want, wait_until, stop);
  if (stop()) return absl::CancelledError("run stopped");
  if (connected < min_clients) {
    return absl::UnavailableError(absl::StrCat("only ", connected,
                                               " clients connected, need at least ",
                                               min_clients));
  }
  // The run's license rules may refuse some of them (run_governance.h): refused clients
  // do not count, so wait (up to the same deadline) for others to connect. Clients whose
  // record-level privacy budget is spent (record_privacy.h) are never selected again, and
  // are not waited for either.
  size_t exhausted = 0;
  std::vector<std::string> candidates = SelectableClients(run, &exhausted);
  while (candidates.size() + exhausted < std::min(want, connected) &&
         absl::Now() < wait_until) {
    connected = registry_->AwaitConnected(connected + 1, wait_until, stop);
    if (stop()) return absl::CancelledError("run stopped");
    candidates = SelectableClients(run, &exhausted);
  }
  if (candidates.size() < min_clients) {
    return absl::UnavailableError(absl::StrCat(
        "only ", candidates.size(), " of ", connected, " connected clients are accepted by "
        "the run's license rules",
        exhausted > 0 ? absl::StrCat(" and have privacy budget left (", exhausted,
                                     " refused a task: their budget is spent)")
                      : "",
        ", need at least ", min_clients,
        exhausted > 0 ? " (see refused_clients and budget_exhausted_clients)"
                      : " (see refused_clients)"));
  }
  if (run->privacy != nullptr) {
    // Poisson sampling, as the privacy accountant assumes; the cohort may come out small.
    TESSERA_ASSIGN_OR_RETURN(candidates, run->privacy->Sample(std::move(candidates)));
    std::sort(candidates.begin(), candidates.end());
    if (candidates.size() < min_clients) {
      return absl::UnavailableError(absl::StrCat(
          "Poisson sampling (q = ", run->privacy->plan().sampling_rate, ") chose ", candidates.size(),
          " of ", connected, " connected clients, fewer than selection.min_clients = ",
          min_clients, "; nothing was aggregated or released"));
    }
    return candidates;
  }
  std::mt19937_64 rng(config.seed() * 1000003ull + summary.round() * 131ull +
                      summary.attempt());
  std::shuffle(candidates.begin(), candidates.end(), rng);
  candidates.resize(std::min(candidates.size(), TargetClients(sel, candidates.size())));
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

}  // namespace tessera::coordinator
