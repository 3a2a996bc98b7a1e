// File: local_data.h
// A client's private data as its flags describe it: the source (IDX directory or CSV file)
// and, for demos and experiments, which shard of a partition this client holds.
#ifndef TESSERA_CLIENT_RUNTIME_LOCAL_DATA_H_
#define TESSERA_CLIENT_RUNTIME_LOCAL_DATA_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/data/dataset.h"

namespace tessera {

struct LocalDataOptions {
  // "idx:DIR" (MNIST-family files train-*/t10k-*, .gz or raw), "csv:FILE", or
  // "jsonl:FILE" (text for language-model runs: kept as a path, tokenized once a run says
  // how; partitions do not apply).
  std::string source = "idx:/usr/share/datasets/fashion-mnist";
  // For CSV sources: "csv:FILE" with the test split (required for csv).
  std::string test_source;
  std::string label_column = "label";  // CSV label column
  // "none" (all of the data; needs num_partitions 1) or a partition spec of
  // client/data/partition.h (ParsePartitionSpec): "iid", "dirichlet:A[,min_size=N]",
  // "label_quantity:K", "shards[:K]", "quantity_skew:B[,min_size=N]" or "feature_noise:S".
  // The spec splits the train split into num_partitions parties (MakePartition with
  // partition_seed) and this client keeps party partition_index. feature_noise adds
  // N(0, FeatureNoiseStd(S, partition_index, num_partitions)^2) noise to this party's train
  // features only (seed partition_seed + partition_index). The test split is always split
  // IID (seed partition_seed + 1), clean.
  std::string partition = "none";
  uint32_t num_partitions = 1;
  uint32_t partition_index = 0;
  uint64_t partition_seed = 42;
  // Use at most this many examples of each split before partitioning (0 = all).
  size_t limit = 0;
};

struct LocalData {
  Dataset train;
  Dataset test;  // this client's shard of the test split (IID), for federated evaluation
  std::string text_path;  // jsonl: sources (then train and test are empty)
  uint64_t text_records = 0;  // jsonl: its records (non-blank lines), before any run's split
};

// Errors name the flag: INVALID_ARGUMENT ("--partition: ..." for a bad spec or one the
// data cannot satisfy, "--num-partitions: ...", "--partition-index: ...", "--data: ..."),
// FAILED_PRECONDITION ("--partition: ...") when a Dirichlet draw never reaches min_size, or
// NOT_FOUND for files.
absl::StatusOr<LocalData> LoadLocalData(const LocalDataOptions& options);

}  // namespace tessera

#endif  // TESSERA_CLIENT_RUNTIME_LOCAL_DATA_H_
