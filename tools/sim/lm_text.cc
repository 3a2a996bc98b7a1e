#include "tools/sim/lm_text.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <utility>

#include <glog/logging.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"

namespace tessera::sim {
namespace {

absl::Status Field(absl::string_view key, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("simulation.", key, ": ", message));
}

// The non-blank lines of a JSONL file (its records, as LoadTextData counts them), at most
// `limit` (0: all).
absl::StatusOr<std::vector<std::string>> ReadRecords(const std::string& path, uint64_t limit) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("simulation.dataset: cannot open ", path));
  std::vector<std::string> records;
  std::string line;
  while ((limit == 0 || records.size() < limit) && std::getline(in, line)) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    records.push_back(std::move(line));
  }
  return records;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LmSimulation>> LmSimulation::Create(
    const SimulationConfig& sc, const wire::v1::CausalLmSpec& spec,
    const PartitionSpec& partition, uint64_t seed) {
  if (sc.base_checkpoint.empty()) {
    return Field("base_checkpoint",
                 "is required for a [model.causal_lm] run: the base checkpoint directory every "
                 "virtual client shares");
  }
  if (sc.dataset.rfind("jsonl:", 0) != 0) {
    return Field("dataset", absl::StrCat("a [model.causal_lm] run reads text: must be "
                                         "\"jsonl:FILE\", got \"", sc.dataset, "\""));
  }
  if (partition.kind != PartitionSpec::kIid && partition.kind != PartitionSpec::kQuantitySkew) {
    return Field("partition", absl::StrCat("text records have no labels: use \"iid\" or "
                                           "\"quantity_skew:B\", got \"",
                                           PartitionSpecToString(partition), "\""));
  }
  LmBaseCache& cache = LmBaseCache::Global();
  // 1. The base, as a client checks and loads it; pinned for the run.
  TESSERA_ASSIGN_OR_RETURN(std::string sha256, cache.Sha256(sc.base_checkpoint));
  const std::string want = crypto::HexEncode(spec.base_sha256());
  if (sha256 != want) {
    return absl::FailedPreconditionError(absl::StrCat(
        "simulation.base_checkpoint: ", sc.base_checkpoint, " has sha256 ", sha256,
        "; the run's model.causal_lm.base_sha256 is ", want,
        " (a different model or a modified copy)"));
  }
  auto sim = std::unique_ptr<LmSimulation>(new LmSimulation());
  lm::LoadOptions load;
  load.device = sc.device;
  load.gradient_checkpointing = spec.gradient_checkpointing();
  TESSERA_ASSIGN_OR_RETURN(sim->base_, cache.Base(sc.base_checkpoint, want, spec.lora(), load));
  TESSERA_ASSIGN_OR_RETURN(sim->evaluator_, sim->base_->ShareBase());
  TESSERA_ASSIGN_OR_RETURN(sim->tokenizer_, cache.Tokenizer(sc.base_checkpoint, want));
  const lm::Tokenizer* tokenizer = sim->tokenizer_.get();

  // 2. The records, partitioned among the clients.
  const std::string file = sc.dataset.substr(6);
  TESSERA_ASSIGN_OR_RETURN(std::vector<std::string> records, ReadRecords(file, sc.limit));
  if (records.size() < sc.clients) {
    return Field("clients", absl::StrCat(sc.clients, " virtual clients need at least as many "
                                         "records; ", file, " has ", records.size(),
                                         sc.limit > 0 ? " (within simulation.limit)" : ""));
  }
  const std::vector<int64_t> labels(records.size(), 0);
  absl::StatusOr<Partition> parts = MakePartition(partition, labels, 1, sc.clients, seed);
  if (!parts.ok()) return Field("partition", parts.status().message());
  TextShards& shards = sim->shards_;
  shards.records = *std::move(parts);
  shards.total_records = records.size();

  // 3. Each client's file, split and tokenized as its LmWorkload will.
  const std::string dir = sc.output + "/text";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
  lm::TextDataOptions text = TextOptionsFromSpec(spec.text());
  text.split_seed = LmWorkloadOptions().split_seed;  // as TaskExecutor's workloads
  shards.paths.resize(sc.clients);
  shards.train_examples.assign(sc.clients, 0);
  for (size_t i = 0; i < shards.records.size(); ++i) {
    std::vector<size_t>& mine = shards.records[i];
    if (mine.empty()) continue;
    std::sort(mine.begin(), mine.end());  // the file's order
    const std::string path = absl::StrFormat("%s/client-%05d.jsonl", dir, i);
    {
      std::ofstream out(path, std::ios::binary);
      for (size_t r : mine) out << records[r] << '\n';
      if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", path));
    }
    absl::StatusOr<lm::TextData> data = lm::LoadTextData(path, *tokenizer, text);
    if (!data.ok()) {
      return absl::Status(data.status().code(),
                          absl::StrCat("simulation.dataset: ", file, " (client ", i,
                                       "'s records, in ", path, "): ",
                                       data.status().message()));
    }
    shards.paths[i] = path;
    shards.train_examples[i] = data->train.size();
    for (lm::TokenizedExample& e : data->heldout) shards.heldout.push_back(std::move(e));
  }
  if (shards.heldout.empty() && sc.test_every > 0) {
    return absl::InvalidArgumentError(
        "model.causal_lm.text.heldout_fraction: no virtual client holds out any record (0, "
        "or clients with a single record each): nothing to evaluate the adapter on; set "
        "simulation.test_every = 0 to run without evaluation");
  }
  LOG(INFO) << "simulation: " << records.size() << " records of " << file << " among "
            << sc.clients << " clients in " << dir << "; " << shards.heldout.size()
            << " held-out examples";
  return sim;
}

absl::StatusOr<EvalResult> LmSimulation::Evaluate(const ArrayRecord& adapter) {
  TESSERA_RETURN_IF_ERROR(evaluator_->SetAdapter(adapter));
  TESSERA_ASSIGN_OR_RETURN(lm::LmEvalResult r, evaluator_->Evaluate(shards_.heldout));
  EvalResult out;
  out.loss = r.loss;
  out.accuracy = r.accuracy;
  out.num_examples = r.target_tokens;
  return out;
}

}  // namespace tessera::sim
