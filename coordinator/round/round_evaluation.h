// File: round_evaluation.h
// Evaluation of a new global model at the round loop's evaluate station (docs/architecture.md
// "The round loop"): which rounds are evaluated, the checks on each client's result
// (accept), and the example-weighted means the round's summary gets (aggregate). RunManager
// dispatches the EVALUATE tasks to the clients the run's license rules accept and waits for
// their results until the evaluation deadline.
#ifndef TESSERA_COORDINATOR_ROUND_ROUND_EVALUATION_H_
#define TESSERA_COORDINATOR_ROUND_ROUND_EVALUATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "tessera/wire/v1/control.pb.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::coordinator {

// The results of one evaluation round. Not thread-safe: the round's lock guards it.
class RoundEvaluation {
 public:
  // Select: whether the model of round `round` is evaluated: every `evaluation.every()`
  // rounds and after the last of `total_rounds`; never when every is 0.
  static bool Due(const wire::v1::EvaluationConfig& evaluation, uint32_t total_rounds,
                  uint32_t round);

  // Accept: INVALID_ARGUMENT naming the field when a result's `num_examples` is 0 or over
  // `max_examples`, its `loss` is not finite or its `accuracy` is outside [0, 1].
  static absl::Status Validate(uint64_t num_examples, double loss, double accuracy,
                               uint64_t max_examples);
  // Accept: one client's result, already validated.
  void Accept(uint64_t num_examples, double loss, double accuracy);

  // Aggregate: `summary`'s evaluated (how many results came) and, when any did, its eval_loss
  // and eval_accuracy, the means weighted by each result's examples.
  void Summarize(wire::v1::RoundSummary* summary) const;

 private:
  uint32_t results_ = 0;
  uint64_t examples_ = 0;
  double weighted_loss_ = 0;      // sum of loss * examples
  double weighted_accuracy_ = 0;  // sum of accuracy * examples
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ROUND_ROUND_EVALUATION_H_
