#include "coordinator/round/round_evaluation.h"

#include <cmath>

namespace tessera::coordinator {

bool RoundEvaluation::Due(const wire::v1::EvaluationConfig& evaluation, uint32_t total_rounds,
                          uint32_t round) {
  const uint32_t every = evaluation.every();
  return every != 0 && (round % every == 0 || round == total_rounds);
}

absl::Status RoundEvaluation::Validate(uint64_t num_examples, double loss, double accuracy,
                                       uint64_t max_examples) {
  if (num_examples == 0 || num_examples > max_examples) {
    return absl::InvalidArgumentError("num_examples out of range");
  }
  if (!std::isfinite(loss) || !(accuracy >= 0.0 && accuracy <= 1.0)) {
    return absl::InvalidArgumentError("evaluation: loss must be finite and accuracy in [0, 1]");
  }
  return absl::OkStatus();
}

void RoundEvaluation::Accept(uint64_t num_examples, double loss, double accuracy) {
  ++results_;
  examples_ += num_examples;
  weighted_loss_ += loss * num_examples;
  weighted_accuracy_ += accuracy * num_examples;
}

void RoundEvaluation::Summarize(wire::v1::RoundSummary* summary) const {
  summary->set_evaluated(results_);
  if (examples_ > 0) {
    summary->set_eval_loss(weighted_loss_ / examples_);
    summary->set_eval_accuracy(weighted_accuracy_ / examples_);
  }
}

}  // namespace tessera::coordinator
