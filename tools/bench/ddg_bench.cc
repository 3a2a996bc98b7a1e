// ddg_bench: client and server cost of the distributed discrete Gaussian codec
// (privacy/dp/ddg_codec.h) for one update of d = 1,000,000 values (padded to 2^20), with
// the stages of EncodeDdg timed separately, next to plain memory passes over the same data
// so the costs can be read as ratios.
//
//   ddg_bench                                  # all benchmarks
//   ddg_bench --benchmark_filter=Encode        # Google Benchmark flags apply
//
// Parameters: C = 1, z = 1 (noise_stddev = 1), b = 20 bits, min_clients = 3,
// max_clients = 1000, k = 4, beta = exp(-0.5); the per-client noise stddev in integer units
// is printed as a counter (sigma_int). The rounding and noise draw from SecureRandom, as in
// production (AES-256-CTR keystream).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/benchmark_main.h"
#include "privacy/dp/ddg_codec.h"
#include "privacy/dp/discrete_gaussian.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {
namespace {

constexpr uint64_t kDimension = 1'000'000;
const std::string kSeed(32, 'k');

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "ddg_bench: %s\n", v.status().ToString().c_str());
    std::abort();
  }
  return *std::move(v);
}

// Built once: parameters, an input update and its intermediate stages.
struct Fixture {
  DdgParams params;
  std::vector<float> x;
  std::vector<double> scaled;
  std::vector<int64_t> rounded;
  std::vector<uint64_t> encoded;

  Fixture() {
    params = OrDie(MakeDdgParams({.clip = 1.0,
                                  .dimension = kDimension,
                                  .modulus_bits = 20,
                                  .noise_stddev = 1.0,
                                  .min_clients = 3,
                                  .max_clients = 1000}));
    x.resize(kDimension);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.001 * i));
    SecureRandom rng = OrDie(SecureRandom::FromSeed(std::string(32, 'r')));
    scaled = OrDie(ddg_internal::ClipRotateScale(x, params, kSeed)).values;
    rounded = OrDie(ddg_internal::ConditionalRound(scaled, params, rng));
    encoded = OrDie(EncodeDdg(x, params, kSeed, rng)).values;
  }
};

const Fixture& Data() {
  static const Fixture* fixture = new Fixture();
  return *fixture;
}

void SetCounters(benchmark::State& state, size_t bytes_per_value) {
  const Fixture& f = Data();
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.params.padded_dimension));
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(f.params.padded_dimension * bytes_per_value));
}

// Baseline 1: copy the 1M input floats (what any client-side step costs at minimum).
void BM_BaselineCopyFloats(benchmark::State& state) {
  const Fixture& f = Data();
  std::vector<float> out(f.x.size());
  for (auto _ : state) {
    std::memcpy(out.data(), f.x.data(), f.x.size() * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.x.size() * 4));
}
BENCHMARK(BM_BaselineCopyFloats)->Unit(benchmark::kMillisecond);

// Baseline 2: one read pass with arithmetic (the L2 norm of the 1M floats in double).
void BM_BaselineNormPass(benchmark::State& state) {
  const Fixture& f = Data();
  for (auto _ : state) {
    double s = 0;
    for (float v : f.x) s += static_cast<double>(v) * v;
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.x.size() * 4));
}
BENCHMARK(BM_BaselineNormPass)->Unit(benchmark::kMillisecond);

// Baseline 3: 2^20 raw keystream words from SecureRandom (the randomness floor of rounding).
void BM_BaselineSecureRandomWords(benchmark::State& state) {
  SecureRandom rng = OrDie(SecureRandom::FromSeed(std::string(32, 'b')));
  const size_t d = Data().params.padded_dimension;
  for (auto _ : state) {
    uint64_t acc = 0;
    for (size_t i = 0; i < d; ++i) acc ^= rng.NextUint64();
    benchmark::DoNotOptimize(acc);
  }
  SetCounters(state, 8);
}
BENCHMARK(BM_BaselineSecureRandomWords)->Unit(benchmark::kMillisecond);

void BM_ClipRotateScale(benchmark::State& state) {
  const Fixture& f = Data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(OrDie(ddg_internal::ClipRotateScale(f.x, f.params, kSeed)));
  }
  SetCounters(state, 8);
}
BENCHMARK(BM_ClipRotateScale)->Unit(benchmark::kMillisecond);

void BM_ConditionalRound(benchmark::State& state) {
  const Fixture& f = Data();
  SecureRandom rng = OrDie(SecureRandom::FromSeed(std::string(32, 'c')));
  for (auto _ : state) {
    benchmark::DoNotOptimize(OrDie(ddg_internal::ConditionalRound(f.scaled, f.params, rng)));
  }
  SetCounters(state, 8);
}
BENCHMARK(BM_ConditionalRound)->Unit(benchmark::kMillisecond);

void BM_DiscreteGaussianNoise(benchmark::State& state) {
  const Fixture& f = Data();
  SecureRandom rng = OrDie(SecureRandom::FromSeed(std::string(32, 'n')));
  std::vector<int64_t> values = f.rounded;
  for (auto _ : state) {
    absl::Status s = AddDiscreteGaussianNoise(absl::MakeSpan(values), f.params.sigma2_num,
                                              f.params.sigma2_den, rng);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(values.data());
  }
  SetCounters(state, 8);
  state.counters["sigma_int"] = std::sqrt(f.params.sigma2_per_client);
}
BENCHMARK(BM_DiscreteGaussianNoise)->Unit(benchmark::kMillisecond);

void BM_ReduceModulo(benchmark::State& state) {
  const Fixture& f = Data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(ddg_internal::ReduceModulo(f.rounded, f.params.modulus_mask));
  }
  SetCounters(state, 8);
}
BENCHMARK(BM_ReduceModulo)->Unit(benchmark::kMillisecond);

void BM_EncodeDdg(benchmark::State& state) {
  const Fixture& f = Data();
  SecureRandom rng = OrDie(SecureRandom::FromSeed(std::string(32, 'e')));
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(EncodeDdg(f.x, f.params, kSeed, rng)));
  SetCounters(state, 8);
  state.counters["gamma"] = f.params.gamma;
  state.counters["l2_sens"] = f.params.l2_sensitivity;
}
BENCHMARK(BM_EncodeDdg)->Unit(benchmark::kMillisecond);

void BM_DecodeDdgSum(benchmark::State& state) {
  const Fixture& f = Data();
  for (auto _ : state) benchmark::DoNotOptimize(OrDie(DecodeDdgSum(f.encoded, f.params, kSeed)));
  SetCounters(state, 8);
}
BENCHMARK(BM_DecodeDdgSum)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tessera::dp

int main(int argc, char** argv) {
  return tessera::BenchmarkMain(
      argc, argv,
      "Client and server cost of the distributed discrete Gaussian codec for one update of "
      "d = 1,000,000 values, next to plain memory passes over the same data.");
}
