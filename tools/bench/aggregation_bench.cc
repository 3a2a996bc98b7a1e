// tessera-bench-aggregation: FedAvg fold throughput against a memory-bandwidth
// baseline measured in the same run over the same bytes.
//
//   tessera-bench-aggregation --params=10000000 --clients=20 --repeats=5
//
// Throughput is bytes of update read per second: clients x model bytes / time. The exact
// fold's rows also run each compiled variant of its vectorized kernel (portable, AVX2,
// AVX-512, where this CPU has them) and an all-zero update (what
// tessera-bench-federation's clients send).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "aggregation/fed_avg.h"
#include "aggregation/internal/kernels.h"
#include "core/base/program_flags.h"
#include "core/model/tensor.h"

ABSL_FLAG(int64_t, params, 10'000'000, "float32 parameters per model");
ABSL_FLAG(int32_t, clients, 20, "updates folded per repeat");
ABSL_FLAG(int32_t, repeats, 5,
          "timed repetitions (best and median are reported)");

namespace tessera {
namespace {

constexpr int kTensors = 4;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A model of `params` float32 values split over kTensors tensors, filled with
// small pseudo-random values (an LCG: fast, and the values do not matter).
ArrayRecord MakeUpdate(int64_t params, uint32_t seed) {
  ArrayRecord r;
  int64_t left = params;
  for (int i = 0; i < kTensors; ++i) {
    const int64_t n = i + 1 == kTensors ? left : params / kTensors;
    left -= n;
    std::vector<float> v(static_cast<size_t>(n));
    uint32_t s = seed * 2654435761u + static_cast<uint32_t>(i);
    for (float& x : v) {
      s = s * 1664525u + 1013904223u;
      x = static_cast<float>(s >> 8) * (1.0f / 16777216.0f) - 0.5f;
    }
    absl::StatusOr<Tensor> t =
        Tensor::FromFloats(absl::StrCat("layer", i), {n}, v);
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
      std::exit(1);
    }
    r.tensors.push_back(*std::move(t));
  }
  return r;
}

// The baselines: the simplest loops over the same bytes.
void AddLoop(float* __restrict dst, const float* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

struct Stats {
  double best = 0;
  double median = 0;
};

Stats Summarize(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  return {seconds.front(), seconds[seconds.size() / 2]};
}

int Run() {
  const int64_t params = absl::GetFlag(FLAGS_params);
  const int clients = absl::GetFlag(FLAGS_clients);
  const int repeats = absl::GetFlag(FLAGS_repeats);
  if (params < kTensors || clients < 1 || repeats < 1) {
    std::fprintf(stderr,
                 "need --params >= %d, --clients >= 1, --repeats >= 1\n",
                 kTensors);
    return 2;
  }
  std::vector<ArrayRecord> updates;
  std::vector<double> weights;
  for (int k = 0; k < clients; ++k) {
    updates.push_back(MakeUpdate(params, static_cast<uint32_t>(k + 1)));
    weights.push_back(100.0 + k);
  }
  const double model_bytes = static_cast<double>(updates[0].TotalBytes());
  const double bytes = model_bytes * clients;

  // Destination buffers for the baselines, one per tensor, touched before
  // timing.
  std::vector<std::vector<float>> dst;
  for (const Tensor& t : updates[0].tensors) dst.emplace_back(t.numel(), 0.0f);

  const std::vector<aggregation_internal::FoldProductsVariant> variants =
      aggregation_internal::FoldProductsVariants();
  ArrayRecord zero_update = updates[0];
  for (Tensor& t : zero_update.tensors) {
    auto v = t.mutable_values<float>();
    std::fill(v.begin(), v.end(), 0.0f);
  }
  std::vector<double> t_memcpy, t_add, t_check, t_axpy, t_fold, t_fold_finite, t_create,
      t_average, t_zero;
  std::vector<std::vector<double>> t_variant(variants.size());
  uint64_t acc_memory = 0;
  double checksum = 0;
  for (int r = 0; r < repeats; ++r) {
    auto a = Clock::now();
    for (const ArrayRecord& u : updates) {
      for (size_t i = 0; i < u.tensors.size(); ++i) {
        std::memcpy(dst[i].data(), u.tensors[i].data().data(),
                    u.tensors[i].byte_size());
      }
    }
    auto b = Clock::now();
    t_memcpy.push_back(Seconds(a, b));
    checksum += dst[0][0];

    a = Clock::now();
    for (const ArrayRecord& u : updates) {
      for (size_t i = 0; i < u.tensors.size(); ++i) {
        auto v = u.tensors[i].values<float>();
        AddLoop(dst[i].data(), v.data(), v.size());
      }
    }
    b = Clock::now();
    t_add.push_back(Seconds(a, b));
    checksum += dst[0][0];

    // The two halves of WeightedAccumulator::Add, timed alone (internal
    // kernels).
    a = Clock::now();
    bool finite = true;
    for (const ArrayRecord& u : updates) {
      for (const Tensor& t : u.tensors) {
        auto v = t.values<float>();
        finite &= AllFinite(v.data(), v.size());
      }
    }
    b = Clock::now();
    t_check.push_back(Seconds(a, b));
    checksum += finite ? 0 : 1;

    a = Clock::now();
    for (int k = 0; k < clients; ++k) {
      const ArrayRecord& u = updates[k];
      for (size_t i = 0; i < u.tensors.size(); ++i) {
        auto v = u.tensors[i].values<float>();
        aggregation_internal::Axpy(dst[i].data(), v.data(),
                                   static_cast<float>(weights[k]), v.size());
      }
    }
    b = Clock::now();
    t_axpy.push_back(Seconds(a, b));
    checksum += dst[0][0];

    a = Clock::now();
    absl::StatusOr<aggregation::WeightedAccumulator> acc =
        aggregation::WeightedAccumulator::Create(updates[0]);
    b = Clock::now();
    if (!acc.ok()) {
      std::fprintf(stderr, "%s\n", acc.status().ToString().c_str());
      return 1;
    }
    t_create.push_back(Seconds(a, b));
    acc_memory = acc->memory_bytes();
    a = Clock::now();
    for (int k = 0; k < clients; ++k) {
      absl::Status s = acc->Add(updates[k], weights[k]);
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        return 1;
      }
    }
    b = Clock::now();
    t_fold.push_back(Seconds(a, b));
    // The coordinator's path: the stream reader verified finiteness while chunks arrived.
    // Seconds for AddFinite of every client's update (or of `zero` for each), in a new
    // accumulator; negative on error.
    auto time_add_finite = [&](const ArrayRecord* zero) {
      absl::StatusOr<aggregation::WeightedAccumulator> fresh =
          aggregation::WeightedAccumulator::Create(updates[0]);
      if (!fresh.ok()) return -1.0;
      const Clock::time_point start = Clock::now();
      for (int k = 0; k < clients; ++k) {
        if (!fresh->AddFinite(zero != nullptr ? *zero : updates[k], weights[k]).ok()) return -1.0;
      }
      return Seconds(start, Clock::now());
    };
    t_fold_finite.push_back(time_add_finite(nullptr));
    // The same fold with each kernel variant this CPU runs.
    for (size_t v = 0; v < variants.size(); ++v) {
      if (!variants[v].supported) continue;
      const aggregation_internal::FoldProductsFn chosen =
          aggregation_internal::UseFoldProductsVariant(variants[v].fn);
      t_variant[v].push_back(time_add_finite(nullptr));
      aggregation_internal::UseFoldProductsVariant(chosen);
      if (t_variant[v].back() < 0) return 1;
    }
    t_zero.push_back(time_add_finite(&zero_update));
    for (const std::vector<double>* t : {&t_fold_finite, &t_zero}) {
      if (t->back() < 0) return 1;
    }
    a = Clock::now();
    absl::StatusOr<ArrayRecord> avg = std::move(*acc).Average();
    b = Clock::now();
    if (!avg.ok()) {
      std::fprintf(stderr, "%s\n", avg.status().ToString().c_str());
      return 1;
    }
    t_average.push_back(Seconds(a, b));
    checksum += avg->tensors[0].values<float>()[0];
  }

  const double mb = 1e6, gb = 1e9;
  std::printf(
      "params=%lld (%.1f MB/update, %d tensors)  clients=%d  repeats=%d\n",
      static_cast<long long>(params), model_bytes / mb, kTensors, clients,
      repeats);
  std::printf("%-34s %12s %12s %14s\n", "kernel (same bytes)", "best GB/s",
              "median GB/s", "median ms/upd");
  auto row = [&](const char* name, const std::vector<double>& t) {
    const Stats s = Summarize(t);
    std::printf("%-34s %12.2f %12.2f %14.2f\n", name, bytes / s.best / gb,
                bytes / s.median / gb, s.median / clients * 1e3);
  };
  row("memcpy(dst, src)", t_memcpy);
  row("dst[i] += src[i]", t_add);
  row("  validate only (AllFinite)", t_check);
  row("  fold only (acc[i] += w * x[i])", t_axpy);
  row("WeightedAccumulator::Add", t_fold);
  row("WeightedAccumulator::AddFinite", t_fold_finite);
  for (size_t v = 0; v < variants.size(); ++v) {
    if (variants[v].supported) {
      row(absl::StrCat("  AddFinite, kernel ", variants[v].name).c_str(), t_variant[v]);
    }
  }
  row("  AddFinite of an all-zero update", t_zero);
  const Stats add = Summarize(t_add), fold = Summarize(t_fold),
              finite = Summarize(t_fold_finite);
  std::printf("Add / add-loop throughput: %.2f (best), %.2f (median)\n",
              add.best / fold.best, add.median / fold.median);
  std::printf("AddFinite (coordinator path) / add-loop: %.2f (best), %.2f (median)\n",
              add.best / finite.best, add.median / finite.median);
  std::printf(
      "Create: %.2f ms  Average: %.2f ms (median)  accumulator memory: %.1f MB"
      " (model %.1f MB)\n",
      Summarize(t_create).median * 1e3, Summarize(t_average).median * 1e3,
      static_cast<double>(acc_memory) / mb, model_bytes / mb);
  std::printf("(checksum %g)\n", checksum);
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  tessera::ParseProgramFlags(argc, argv,
                             "FedAvg fold throughput against a memory-bandwidth baseline "
                             "measured in the same run over the same bytes.");
  return tessera::Run();
}
