// File: lm_workload.h
// What a client does for a language-model run (task.model().causal_lm()): check that its
// local copy of the base checkpoint is the one the run names (SHA-256 of its files), load
// it once with the run's LoRA adapters, turn its JSONL text into train and held-out
// examples with the checkpoint's tokenizer, and then per task: set the global adapter and
// either evaluate it on the held-out split or fine-tune it with AdamW and return the change
// of the trainable adapter tensors. The base weights never leave the client; the coordinator
// only ever holds adapters.
#ifndef TESSERA_CLIENT_RUNTIME_LM_WORKLOAD_H_
#define TESSERA_CLIENT_RUNTIME_LM_WORKLOAD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/lm/text/text_data.h"
#include "client/lm/tokenizer/tokenizer.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/training/local_model.h"
#include "core/model/tensor.h"
#include "tessera/wire/v1/fleet.pb.h"

namespace tessera {

struct LmWorkloadOptions {
  std::string base_checkpoint;  // the partner's copy of the base model (--base-checkpoint)
  std::string text_path;        // JSONL (--data jsonl:FILE)
  std::string device = "auto";
  // Seeds the held-out split (fixed, so that a client's split is the same every round).
  uint64_t split_seed = 0;
};

// The base checkpoint's LoRA configuration as the run spec states it.
lm::LoraConfig LoraFromSpec(const wire::v1::LoraSpec& spec);
lm::TextDataOptions TextOptionsFromSpec(const wire::v1::TextSpec& spec);

// Not thread-safe: one per executor.
class LmWorkload {
 public:
  explicit LmWorkload(LmWorkloadOptions options);
  ~LmWorkload();

  // Loads (or keeps) the model and data the spec needs. The checkpoint is hashed once.
  // Errors: FAILED_PRECONDITION when no --base-checkpoint or text data was given, or when
  // the checkpoint's SHA-256 is not the run's ("base checkpoint DIR has sha256 X; the run
  // requires Y"); those of the checkpoint, tokenizer and text loaders.
  absl::Status Ensure(const wire::v1::ModelSpec& spec);

  // Token-level loss on the held-out split with `global` as the adapter; num_examples is
  // the number of target tokens (the weight of this client's loss in the federated mean)
  // and accuracy is next-token top-1 accuracy.
  absl::StatusOr<EvalResult> Evaluate(const ArrayRecord& global);

  // Fine-tunes from `global` for the task's local steps (train.max_steps, or local_epochs
  // passes over the train split) and returns trained - global for the trainable adapter
  // tensors. result->num_examples is the number of train examples.
  absl::StatusOr<ArrayRecord> Train(const wire::v1::Task& task, const ArrayRecord& global,
                                    uint64_t seed, TrainResult* result);

  uint64_t num_train_examples() const;
  lm::CausalLm* model() { return model_.get(); }

 private:
  LmWorkloadOptions options_;
  std::string verified_sha256_;  // the base checkpoint's, once hashed
  std::string model_key_;
  std::string data_key_;
  std::unique_ptr<lm::CausalLm> model_;
  std::unique_ptr<lm::Tokenizer> tokenizer_;
  lm::TextData data_;
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_LM_WORKLOAD_H_
