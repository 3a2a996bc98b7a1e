// File: lm_workload.h
// What a client does for a language-model run (task.model().causal_lm()): check that its
// local copy of the base checkpoint is the one the run names (SHA-256 of its files), load
// it once with the run's LoRA adapters, turn its JSONL text into train and held-out
// examples with the checkpoint's tokenizer, and then per task: set the global adapter and
// either evaluate it on the held-out split or fine-tune it with AdamW and return the change
// of the trainable adapter tensors. The base weights never leave the client; the coordinator
// only ever holds adapters.
//
// Every LmWorkload of a process takes its model from one LmBaseCache: the base checkpoint is
// hashed and loaded once, and each workload gets its own adapters on the shared frozen base
// (CausalLm::ShareBase). A client has one workload; the simulator (tools/sim) runs many
// virtual clients on one base this way.
#ifndef TESSERA_CLIENT_RUNTIME_LM_WORKLOAD_H_
#define TESSERA_CLIENT_RUNTIME_LM_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
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

// What the LmWorkloads of a process share: base checkpoint hashes, loaded base models and
// tokenizers. Thread-safe. A loaded model or tokenizer is held weakly: it stays in memory
// while some holder (a workload's model shares its base; or a caller keeps the pointer
// Base() returned) keeps it, and is loaded again after the last one lets go. Loading and
// hashing happen under the cache's lock, so concurrent callers asking for the same base wait
// for one load instead of making their own.
class LmBaseCache {
 public:
  // The process's cache.
  static LmBaseCache& Global();

  LmBaseCache() = default;
  LmBaseCache(const LmBaseCache&) = delete;
  LmBaseCache& operator=(const LmBaseCache&) = delete;

  // lm::CheckpointSha256(dir), computed again only when the names, sizes or modification
  // times of the directory's files changed since the last call.
  // Errors: those of CheckpointSha256.
  absl::StatusOr<std::string> Sha256(const std::string& dir);

  // The base model of checkpoint `dir` (whose hash the caller checked to be `sha256`) with
  // the adapters `lora` initializes, loaded with `options` on first use. Callers train a
  // ShareBase() of it, never the returned model itself (it is const: its adapters stay at
  // their initial values, which ShareBase copies).
  // Errors: those of CausalLm::Load.
  absl::StatusOr<std::shared_ptr<const lm::CausalLm>> Base(const std::string& dir,
                                                            const std::string& sha256,
                                                            const wire::v1::LoraSpec& lora,
                                                            const lm::LoadOptions& options);
  // The tokenizer of checkpoint `dir` (hash `sha256`). Its methods are const and
  // thread-safe. Errors: those of lm::LoadTokenizer.
  absl::StatusOr<std::shared_ptr<const lm::Tokenizer>> Tokenizer(const std::string& dir,
                                                                  const std::string& sha256);

  struct Stats {
    uint64_t hashes = 0;           // CheckpointSha256 computations
    uint64_t model_loads = 0;      // CausalLm::Load calls
    uint64_t model_hits = 0;       // Base() answered from memory
    uint64_t tokenizer_loads = 0;  // LoadTokenizer calls
  };
  Stats stats() const;

 private:
  mutable absl::Mutex mu_;
  // dir -> (fingerprint of its files, sha256)
  std::map<std::string, std::pair<std::string, std::string>> hashes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::weak_ptr<const lm::CausalLm>> models_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::weak_ptr<const lm::Tokenizer>> tokenizers_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// Not thread-safe: one per executor. Different workloads may run on different threads
// (their models share only frozen, read-only base tensors).
class LmWorkload {
 public:
  // `cache` (not owned; default: LmBaseCache::Global()) must outlive the workload.
  explicit LmWorkload(LmWorkloadOptions options, LmBaseCache* cache = nullptr);
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
  LmBaseCache* const cache_;
  std::string verified_sha256_;  // the base checkpoint's, once hashed
  std::string model_key_;
  std::string data_key_;
  std::shared_ptr<const lm::CausalLm> base_;  // keeps the cache's entry alive
  std::unique_ptr<lm::CausalLm> model_;        // own adapters on base_'s weights
  std::shared_ptr<const lm::Tokenizer> tokenizer_;
  lm::TextData data_;
};

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_LM_WORKLOAD_H_
