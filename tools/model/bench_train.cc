#include "tools/model/bench_train.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/data/idx_reader.h"
#include "client/training/device.h"
#include "client/training/local_model.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace {

Dataset SyntheticImages(size_t n) {
  Dataset d;
  d.example_shape = {1, 28, 28};
  d.num_classes = 10;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  d.features.resize(n * 28 * 28);
  for (float& f : d.features) f = normal(rng);
  d.labels.resize(n);
  for (size_t i = 0; i < n; ++i) d.labels[i] = static_cast<int64_t>(i % 10);
  return d;
}

void Add(const TrainResult& r, BenchTrainResult& result) {
  result.steps += r.steps;
  result.images += r.examples_processed;
  result.seconds += r.seconds;
  result.final_loss = r.train_loss;
}

// One local epoch per call over consecutive examples_per_call slices of `data`.
absl::Status TrainPerCall(LocalModel& model, const Dataset& data,
                          const BenchTrainOptions& options, TrainOptions train,
                          BenchTrainResult& result) {
  const size_t n = options.examples_per_call;
  std::vector<Dataset> slices;
  for (size_t begin = 0; begin + n <= data.size(); begin += n) {
    std::vector<size_t> indices(n);
    std::iota(indices.begin(), indices.end(), begin);
    TESSERA_ASSIGN_OR_RETURN(Dataset slice, Subset(data, indices));
    slices.push_back(std::move(slice));
  }
  train.epochs = 1;
  train.max_steps = 0;
  for (size_t call = 0; result.seconds < options.seconds; ++call) {
    train.seed = call;
    TESSERA_ASSIGN_OR_RETURN(TrainResult r, model.Train(slices[call % slices.size()], train));
    Add(r, result);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BenchTrainResult> BenchTrain(const BenchTrainOptions& options) {
  if (options.batch_size == 0 || !(options.seconds > 0) || options.num_examples == 0) {
    return absl::InvalidArgumentError(
        "bench-train: batch size, seconds and example count must be > 0");
  }
  if (options.examples_per_call > options.num_examples) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bench-train: examples per call (", options.examples_per_call,
        ") exceeds the example count (", options.num_examples, ")"));
  }
  TESSERA_RETURN_IF_ERROR(SetTorchThreads(options.threads));
  Dataset data;
  if (options.data_dir.empty()) {
    data = SyntheticImages(options.num_examples);
  } else {
    TESSERA_ASSIGN_OR_RETURN(data,
                             LoadIdxSplit(options.data_dir, "train", options.num_examples));
  }
  TESSERA_ASSIGN_OR_RETURN(
      std::unique_ptr<LocalModel> model,
      LocalModel::CreateBuiltin(options.architecture, /*seed=*/1, options.device));

  TrainOptions train;
  train.batch_size = options.batch_size;
  train.learning_rate = options.learning_rate;
  train.momentum = options.momentum;
  train.max_steps = kBenchWarmupSteps;
  train.epochs = kBenchWarmupSteps;  // max_steps decides
  if (options.dp_sgd) {
    train.dp_sgd = DpSgdOptions{};
    train.dp_sgd->noise_multiplier = 1.0;
    train.dp_sgd->clip_norm = 1.0;
    train.dp_sgd->expected_batch_size = options.batch_size;
    train.dp_sgd->max_physical_batch = std::max<uint32_t>(options.batch_size, 256);
  }
  TESSERA_ASSIGN_OR_RETURN(TrainResult warmup, model->Train(data, train));

  BenchTrainResult result;
  result.architecture = options.architecture;
  result.device = model->device();
  result.data = options.data_dir.empty() ? "synthetic" : options.data_dir;
  result.batch_size = options.batch_size;
  result.dp_sgd = options.dp_sgd;
  result.examples_per_call = options.examples_per_call;
  result.threads = TorchThreads();
  if (options.examples_per_call > 0) {
    TESSERA_RETURN_IF_ERROR(TrainPerCall(*model, data, options, train, result));
  }
  // Chunks of about half a second, sized from the warm-up.
  const double step_seconds = warmup.seconds / static_cast<double>(warmup.steps);
  const uint32_t chunk = static_cast<uint32_t>(
      std::clamp(0.5 / std::max(step_seconds, 1e-6), 1.0, 100000.0));
  while (options.examples_per_call == 0 && result.seconds < options.seconds) {
    train.max_steps = chunk;
    train.epochs = chunk;
    train.seed = result.steps;
    TESSERA_ASSIGN_OR_RETURN(TrainResult r, model->Train(data, train));
    Add(r, result);
  }
  result.images_per_second = static_cast<double>(result.images) / result.seconds;
  return result;
}

std::string FormatBenchTrainResult(const BenchTrainResult& r, bool json) {
  if (json) {
    nlohmann::ordered_json j = {{"architecture", r.architecture},
                                {"device", r.device},
                                {"data", r.data},
                                {"batch_size", r.batch_size},
                                {"dp_sgd", r.dp_sgd},
                                {"examples_per_call", r.examples_per_call},
                                {"threads", r.threads},
                                {"steps", r.steps},
                                {"images", r.images},
                                {"seconds", r.seconds},
                                {"images_per_second", r.images_per_second},
                                {"final_loss", r.final_loss}};
    return j.dump() + "\n";
  }
  return absl::StrFormat(
      "%s%s batch %u on %s (%d threads, %s data): %.0f images/s (%u steps, %u images in "
      "%.2f s, loss %.4f)\n",
      r.architecture, r.dp_sgd ? " DP-SGD" : "", r.batch_size, r.device, r.threads, r.data, r.images_per_second,
      r.steps, r.images, r.seconds, r.final_loss);
}

}  // namespace tessera
