// File: bench_train.h
// Local-training throughput of a built-in architecture, for the benchmark table:
// images/s of SGD steps (forward, backward, update) on the CPU or a GPU.
#ifndef TESSERA_TOOLS_MODEL_BENCH_TRAIN_H_
#define TESSERA_TOOLS_MODEL_BENCH_TRAIN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace tessera {

struct BenchTrainOptions {
  std::string architecture = "niid_cnn";
  uint32_t batch_size = 64;
  // Measured time, after a warm-up of kBenchWarmupSteps steps.
  double seconds = 5;
  // IDX directory (e.g. /usr/share/datasets/fashion-mnist) whose train split is used;
  // empty means synthetic 1x28x28 data (throughput does not depend on the values).
  std::string data_dir;
  // Examples loaded from data_dir, or generated.
  size_t num_examples = 10000;
  // LibTorch intra-op threads; 0 = LibTorch's default.
  int threads = 0;
  std::string device = "cpu";
  double learning_rate = 0.01;
  double momentum = 0.9;
  // 0: steps over the whole data. N > 0: one local epoch per Train call over consecutive
  // N-example slices, as a federated client with N examples trains each round (with the
  // per-call setup: optimizer, inputs, loss); the simulator benchmark's baseline.
  size_t examples_per_call = 0;
  // Record-level DP-SGD (LocalModel DpSgdOptions) with expected batch size batch_size,
  // noise multiplier 1 and clip norm 1, instead of plain mini-batch SGD.
  bool dp_sgd = false;
};

inline constexpr uint32_t kBenchWarmupSteps = 10;

struct BenchTrainResult {
  std::string architecture;
  std::string device;
  std::string data;  // "synthetic" or the directory
  uint32_t batch_size = 0;
  bool dp_sgd = false;
  size_t examples_per_call = 0;
  int threads = 0;
  uint64_t steps = 0;
  uint64_t images = 0;
  double seconds = 0;
  double images_per_second = 0;
  double final_loss = 0;
};

// Errors: INVALID_ARGUMENT for bad options or an unknown architecture; data loading
// errors of LoadIdxSplit; device errors of ResolveDevice.
absl::StatusOr<BenchTrainResult> BenchTrain(const BenchTrainOptions& options);

// "niid_cnn batch 64 on cpu (2 threads, synthetic data): 7012 images/s (...)".
std::string FormatBenchTrainResult(const BenchTrainResult& result, bool json);

}  // namespace tessera

#endif  // TESSERA_TOOLS_MODEL_BENCH_TRAIN_H_
