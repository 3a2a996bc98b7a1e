#include "privacy/dp/noise_search.h"

#include <algorithm>

#include "core/base/status_macros.h"

namespace tessera::dp::internal {

absl::StatusOr<double> SmallestNoiseMultiplier(
    const std::function<absl::StatusOr<bool>(double sigma)>& meets, const NoiseSearch& search) {
  // Bracket [lo, hi] with meets(hi) and !meets(lo) (lo = 0 stands for "not met").
  double lo = 0.0;
  double hi = std::min(search.start, search.max_sigma);
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(bool ok, meets(hi));
    if (ok) break;
    if (hi >= search.max_sigma) return absl::InvalidArgumentError(search.unreachable);
    lo = hi;
    hi = std::min(2.0 * hi, search.max_sigma);
  }
  if (lo == 0.0 && search.search_below) {
    for (int i = 0; i < 20; ++i) {
      TESSERA_ASSIGN_OR_RETURN(bool ok, meets(0.5 * hi));
      if (!ok) {
        lo = 0.5 * hi;
        break;
      }
      hi *= 0.5;
    }
  }
  while (hi - lo > search.tolerance * hi) {
    const double mid = 0.5 * (lo + hi);
    TESSERA_ASSIGN_OR_RETURN(bool ok, meets(mid));
    (ok ? hi : lo) = mid;
  }
  return hi;
}

}  // namespace tessera::dp::internal
