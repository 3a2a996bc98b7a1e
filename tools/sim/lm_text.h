// File: lm_text.h
// The language-model side of a simulation (a [model.causal_lm] run with
// [simulation] dataset = "jsonl:FILE" and base_checkpoint = "DIR"): the file's records are
// partitioned among the virtual clients and each client's share is written as its own JSONL
// file (what a real client's --data jsonl:FILE is), which the client's LmWorkload reads and
// splits exactly as tessera-client does. The base checkpoint is loaded once
// (LmBaseCache) and pinned for the run; every worker thread trains its own adapters on it,
// and the server side evaluates each global adapter on the union of all clients' held-out
// splits, which is the federated evaluation's token-weighted mean loss.
#ifndef TESSERA_TOOLS_SIM_LM_TEXT_H_
#define TESSERA_TOOLS_SIM_LM_TEXT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/data/partition.h"
#include "client/lm/text/text_data.h"
#include "client/lm/tokenizer/tokenizer.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/runtime/lm_workload.h"
#include "client/training/local_model.h"
#include "core/config/simulation_config.h"
#include "core/model/tensor.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera::sim {

// Each virtual client's text.
struct TextShards {
  Partition records;                    // per client: record indices (file order) it holds
  std::vector<std::string> paths;       // per client: its JSONL file ("" without records)
  std::vector<uint64_t> train_examples; // per client: after its held-out split and packing
  std::vector<lm::TokenizedExample> heldout;  // every client's held-out examples
  uint64_t total_records = 0;
};

class LmSimulation {
 public:
  // Checks base_checkpoint's SHA-256 against spec.base_sha256 and loads it (once, through
  // LmBaseCache::Global()), partitions the records of `sc.dataset` (at most sc.limit) among
  // sc.clients clients with `partition` drawn from `seed` (iid or quantity_skew: text has no
  // labels) and writes each client's share to OUTPUT/text/client-NNNNN.jsonl.
  // Errors: INVALID_ARGUMENT naming the [simulation] key (fewer records than clients, a
  // label-based partition); FAILED_PRECONDITION for a checkpoint whose hash is not the run's
  // ("simulation.base_checkpoint: DIR has sha256 X; the run's model.causal_lm.base_sha256 is
  // Y"); those of the checkpoint, tokenizer and text loaders.
  static absl::StatusOr<std::unique_ptr<LmSimulation>> Create(
      const SimulationConfig& sc, const wire::v1::CausalLmSpec& spec,
      const PartitionSpec& partition, uint64_t seed);

  const TextShards& shards() const { return shards_; }
  // Token-level loss and next-token accuracy of `adapter` on every client's held-out split
  // (EvalResult::num_examples: target tokens). INVALID_ARGUMENT for an adapter that does not
  // fit the run's LoRA spec (names, shapes).
  absl::StatusOr<EvalResult> Evaluate(const ArrayRecord& adapter);

 private:
  LmSimulation() = default;
  std::shared_ptr<const lm::CausalLm> base_;  // pinned for the run: loaded once
  std::unique_ptr<lm::CausalLm> evaluator_;  // own adapters on base_
  std::shared_ptr<const lm::Tokenizer> tokenizer_;  // pinned too: the clients share it
  TextShards shards_;
};

}  // namespace tessera::sim

#endif  // TESSERA_TOOLS_SIM_LM_TEXT_H_
