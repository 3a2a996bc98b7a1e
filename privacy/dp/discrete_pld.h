// File: discrete_pld.h
// A privacy-loss distribution on a grid of loss values and what the accountant does with one,
// independent of the mechanism it came from: the T-fold composition by FFT (with the window
// sized by Chernoff bounds and the tails charged pessimistically), and delta(eps) and
// eps(delta) of a composed PLD. pld_accountant.cc builds the subsampled Gaussian's PLD on
// top. Internal to privacy/dp.
#ifndef TESSERA_PRIVACY_DP_DISCRETE_PLD_H_
#define TESSERA_PRIVACY_DP_DISCRETE_PLD_H_

#include <cstdint>
#include <vector>

namespace tessera::dp::internal {

// A privacy-loss distribution on the grid: mass[i] at loss (first_index + i) * h, plus the mass
// at +inf (outputs that are impossible under Q, or tails charged pessimistically).
struct Pld {
  double h = 0.0;
  double first_index = 0.0;  // an integer, possibly beyond int64 range after composition
  std::vector<double> mass;
  double infinity_mass = 0.0;
};

// The result of composing, or (grid_width > 0) the window width the grid would have needed.
struct Composed {
  double grid_width = 0.0;
  Pld pld;
};

// The `steps`-fold composition of `one` by FFT. The window of sums kept is sized by Chernoff
// bounds on the discrete PLD so that at most `tail` mass lies beyond each end. Mass below the
// window wraps around onto its top (more loss: pessimistic); the Chernoff bound on the mass
// above it, which wraps onto the bottom, is added to the infinity mass. A window wider than
// `max_points` is not computed: grid_width says how wide it would be.
Composed Compose(const Pld& one, uint64_t steps, double tail, int64_t max_points);

// delta(eps) of a discrete PLD: w_inf + sum over losses l > eps of w (1 - e^{eps - l}).
double DeltaOf(const Pld& pld, double eps);

// The smallest eps >= 0 with delta(eps) <= delta for a discrete PLD (+inf when w_inf > delta).
double EpsilonOf(const Pld& pld, double delta);

}  // namespace tessera::dp::internal

#endif  // TESSERA_PRIVACY_DP_DISCRETE_PLD_H_
