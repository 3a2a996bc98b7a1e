#include "privacy/dp/ddg_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/discrete_gaussian.h"
#include "privacy/dp/hadamard.h"
#include "privacy/dp/testing/seeded_random.h"

namespace tessera::dp {
namespace {

using ::testing::HasSubstr;

const std::string kRoundSeed(32, 'r');

DdgParams MustParams(const DdgOptions& o) {
  absl::StatusOr<DdgParams> p = MakeDdgParams(o);
  EXPECT_THAT(p, IsOk());
  return p.ok() ? *p : DdgParams{};
}

// A smooth, deterministic update of `n` values with L2 norm about `norm`.
std::vector<float> Update(size_t n, double norm, int client) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::sin(0.37 * i + client) + 0.2);
  const double scale = norm / L2Norm(x);
  for (float& v : x) v = static_cast<float>(v * scale);
  return x;
}

// Encodes every update with its own seeded rng and adds the encodings mod 2^b, as secure
// aggregation would.
std::vector<uint64_t> EncodeAndSum(const std::vector<std::vector<float>>& updates,
                                   const DdgParams& p) {
  std::vector<uint64_t> sum(p.padded_dimension, 0);
  for (size_t c = 0; c < updates.size(); ++c) {
    SecureRandom rng = Seeded(static_cast<char>('a' + c));
    absl::StatusOr<DdgEncoded> enc = EncodeDdg(updates[c], p, kRoundSeed, rng);
    EXPECT_THAT(enc, IsOk());
    if (!enc.ok()) return {};
    EXPECT_EQ(enc->values.size(), p.padded_dimension);
    for (size_t i = 0; i < sum.size(); ++i) {
      EXPECT_LE(enc->values[i], p.modulus_mask);
      sum[i] = (sum[i] + enc->values[i]) & p.modulus_mask;
    }
  }
  return sum;
}

// The decoded sum minus the sum of the clipped inputs.
std::vector<double> DecodeError(const std::vector<std::vector<float>>& updates,
                                const DdgParams& p) {
  absl::StatusOr<std::vector<float>> decoded =
      DecodeDdgSum(EncodeAndSum(updates, p), p, kRoundSeed);
  EXPECT_THAT(decoded, IsOk());
  if (!decoded.ok()) return {};
  std::vector<double> err(decoded->begin(), decoded->end());
  for (std::vector<float> u : updates) {
    ClipToL2Norm(absl::MakeSpan(u), p.options.clip);
    for (size_t i = 0; i < u.size(); ++i) err[i] -= u[i];
  }
  return err;
}

double Rms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

TEST(DdgParamsTest, GammaSigmaAndSensitivity) {
  const DdgOptions o{.clip = 2.0,
                     .dimension = 1000,
                     .modulus_bits = 20,
                     .noise_stddev = 3.0,
                     .min_clients = 5,
                     .max_clients = 200};
  const DdgParams p = MustParams(o);
  EXPECT_EQ(p.padded_dimension, 1024u);
  EXPECT_EQ(p.modulus_mask, (uint64_t{1} << 20) - 1);
  // The headroom constraint holds with equality: k sd of one coordinate of the sum = 2^19.
  const double n = 200, d = 1024, sigma_int = 3.0 / p.gamma, c = 2.0 / p.gamma;
  const double var = n * n * c * c / d + n / 4 + n * sigma_int * sigma_int / 5;
  EXPECT_NEAR(4 * std::sqrt(var) / std::ldexp(1.0, 19), 1.0, 1e-12);
  // sigma2 = (sigma / gamma)^2 / min_clients, rounded up to num / den, both <= 2^48.
  EXPECT_GE(p.sigma2_per_client, sigma_int * sigma_int / 5);
  EXPECT_NEAR(p.sigma2_per_client / (sigma_int * sigma_int / 5), 1.0, 1e-12);
  EXPECT_LE(p.sigma2_num, kMaxSigma2Term);
  EXPECT_LE(p.sigma2_den, kMaxSigma2Term);
  EXPECT_EQ(p.sigma2_per_client,
            static_cast<double>(p.sigma2_num) / static_cast<double>(p.sigma2_den));
  // KLS bound with beta = exp(-0.5), so sqrt(2 log(1/beta)) = 1.
  const double delta_sq =
      std::min(c * c + d / 4 + (c + std::sqrt(d) / 2), (c + std::sqrt(d)) * (c + std::sqrt(d)));
  EXPECT_GE(p.l2_sensitivity, std::sqrt(delta_sq));
  EXPECT_NEAR(p.l2_sensitivity / std::sqrt(delta_sq), 1.0, 1e-15);

  // beta = 0 keeps only the deterministic bound.
  DdgOptions det = o;
  det.beta = 0;
  EXPECT_NEAR(MustParams(det).l2_sensitivity, c + std::sqrt(d), 1e-9);
}

TEST(DdgParamsTest, WideModulusCoarsensGammaToKeepSigma2Representable) {
  // 62 bits for 3 clients would ask for sigma^2 far above 2^48 per client.
  const DdgParams p = MustParams({.dimension = 10,
                                  .modulus_bits = 62,
                                  .noise_stddev = 1.0,
                                  .min_clients = 3,
                                  .max_clients = 3});
  EXPECT_LE(p.sigma2_num, kMaxSigma2Term);
  EXPECT_LE(p.sigma2_per_client, 0x1p46);
  EXPECT_NEAR(p.sigma2_per_client, 0x1p46, 0x1p46 * 1e-9);
  EXPECT_LE(1.0 / p.gamma, 0x1p50);
}

TEST(DdgParamsTest, RejectsEachBadOptionByName) {
  struct Case {
    const char* option;
    DdgOptions o;
  };
  const DdgOptions ok{.dimension = 100};
  auto with = [&](auto edit) {
    DdgOptions o = ok;
    edit(o);
    return o;
  };
  const Case cases[] = {
      {"clip", with([](DdgOptions& o) { o.clip = 0; })},
      {"clip", with([](DdgOptions& o) { o.clip = -1; })},
      {"clip", with([](DdgOptions& o) { o.clip = NAN; })},
      {"clip", with([](DdgOptions& o) { o.clip = INFINITY; })},
      {"noise_stddev", with([](DdgOptions& o) { o.noise_stddev = 0; })},
      {"noise_stddev", with([](DdgOptions& o) { o.noise_stddev = NAN; })},
      {"dimension", with([](DdgOptions& o) { o.dimension = 0; })},
      {"dimension", with([](DdgOptions& o) { o.dimension = kMaxDdgDimension + 1; })},
      {"modulus_bits", with([](DdgOptions& o) { o.modulus_bits = 7; })},
      {"modulus_bits", with([](DdgOptions& o) { o.modulus_bits = 63; })},
      {"min_clients", with([](DdgOptions& o) { o.min_clients = 0; })},
      {"min_clients", with([](DdgOptions& o) { o.min_clients = 1001; })},
      {"max_clients", with([](DdgOptions& o) { o.max_clients = 0; })},
      {"k_stddevs", with([](DdgOptions& o) { o.k_stddevs = 0; })},
      {"beta", with([](DdgOptions& o) { o.beta = 1; })},
      {"beta", with([](DdgOptions& o) { o.beta = -0.1; })},
      {"beta", with([](DdgOptions& o) { o.beta = NAN; })},
      // 2^7 = 128 <= 4 * sqrt(4096) / 2: the rounding of 4096 clients fills 8 bits.
      {"modulus_bits", with([](DdgOptions& o) {
         o.modulus_bits = 8;
         o.max_clients = 4096;
       })},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(MakeDdgParams(c.o),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.option)))
        << c.option;
  }
}

TEST(DdgCodecTest, RoundTripErrorHasNoiseStddev) {
  // 20000 values: the error's sample stddev is within ~0.5% of the truth.
  const DdgParams p = MustParams({.clip = 1.0,
                                  .dimension = 20000,
                                  .modulus_bits = 20,
                                  .noise_stddev = 0.05,
                                  .min_clients = 3,
                                  .max_clients = 100});
  for (int clients : {3, 5}) {
    std::vector<std::vector<float>> updates;
    for (int c = 0; c < clients; ++c) updates.push_back(Update(20000, 0.8 + 0.3 * c, c));
    std::vector<double> err = DecodeError(updates, p);
    ASSERT_EQ(err.size(), 20000u);
    double mean = 0;
    for (double e : err) mean += e / static_cast<double>(err.size());
    // Noise sd of the sum of n clients = noise_stddev * sqrt(n / min_clients).
    const double want = 0.05 * std::sqrt(clients / 3.0);
    std::printf("clients %d: error sd %.6f, want %.6f, mean %.2e\n", clients, Rms(err), want, mean);
    EXPECT_NEAR(Rms(err) / want, 1.0, 0.03);
    EXPECT_NEAR(mean, 0.0, 4 * want / std::sqrt(20000.0));
  }
}

TEST(DdgCodecTest, TinyNoiseLeavesOnlyRoundingError) {
  const DdgParams p = MustParams({.clip = 1.0,
                                  .dimension = 3000,
                                  .modulus_bits = 16,
                                  .noise_stddev = 1e-9,
                                  .min_clients = 2,
                                  .max_clients = 10});
  EXPECT_LT(p.sigma2_per_client, 1e-6);  // N_Z(0, sigma2) is 0 but with prob. < e^-500000
  std::vector<std::vector<float>> updates;
  for (int c = 0; c < 4; ++c) updates.push_back(Update(3000, 0.5 + 0.5 * c, c));  // 2 clipped
  std::vector<double> err = DecodeError(updates, p);
  ASSERT_EQ(err.size(), 3000u);
  // Each client's rounding moves each rotated coordinate by < 1 unit with variance <= 1/4.
  const double rms_bound = p.gamma * std::sqrt(4.0) / 2;
  std::printf("gamma %.3e: rounding rms %.3e (bound %.3e)\n", p.gamma, Rms(err), rms_bound);
  EXPECT_LE(Rms(err), 1.1 * rms_bound + 1e-6);
  EXPECT_LE(Rms(err) * std::sqrt(3000.0), 4 * p.gamma * std::sqrt(4096.0) + 1e-4);
}

TEST(DdgCodecTest, ClipsLargeInputs) {
  const DdgParams p = MustParams({.clip = 1.5,
                                  .dimension = 500,
                                  .modulus_bits = 24,
                                  .noise_stddev = 1e-9,
                                  .min_clients = 1,
                                  .max_clients = 10});
  const std::vector<float> big = Update(500, 100.0, 0);
  SecureRandom rng = Seeded('c');
  absl::StatusOr<DdgEncoded> enc = EncodeDdg(big, p, kRoundSeed, rng);
  ASSERT_THAT(enc, IsOk());
  EXPECT_NEAR(enc->norm_before_clip, 100.0, 1e-3);
  absl::StatusOr<std::vector<float>> decoded = DecodeDdgSum(enc->values, p, kRoundSeed);
  ASSERT_THAT(decoded, IsOk());
  // The contribution is the input scaled to norm C (up to one client's rounding).
  EXPECT_LE(L2Norm(*decoded), 1.5 + p.gamma * std::sqrt(512.0));
  EXPECT_NEAR(L2Norm(*decoded), 1.5, 1e-3);
  for (size_t i = 0; i < big.size(); ++i) {
    ASSERT_NEAR((*decoded)[i], big[i] * 0.015, 1e-3) << i;
  }
}

TEST(DdgCodecTest, RoundedNormIsWithinSensitivity) {
  // Near the worst case for the probabilistic bound: the scaled norm is exactly C / gamma
  // and every coordinate but one has fraction 1/2 (the largest rounding variance), so
  // about one draw in six exceeds the bound and is redrawn.
  const DdgParams p = MustParams(
      {.clip = 1.0, .dimension = 4096, .modulus_bits = 20, .noise_stddev = 0.5, .max_clients = 50});
  const double c = 1.0 / p.gamma;
  const double half = std::floor(c / 64) - 0.5;
  std::vector<double> scaled(4096);
  for (size_t i = 1; i < scaled.size(); ++i) scaled[i] = i % 2 == 0 ? half : -half;
  scaled[0] = std::sqrt(c * c - 4095 * half * half);
  SecureRandom rng = Seeded('n');
  for (int trial = 0; trial < 50; ++trial) {
    absl::StatusOr<std::vector<int64_t>> q = ddg_internal::ConditionalRound(scaled, p, rng);
    ASSERT_THAT(q, IsOk());
    double norm_sq = 0;
    for (int64_t v : *q) norm_sq += static_cast<double>(v) * static_cast<double>(v);
    ASSERT_LE(std::sqrt(norm_sq), p.l2_sensitivity);
  }
  // Through EncodeDdg with negligible noise (sigma^2 = 2^-48 is always 0): the centered
  // encoding is the rounded vector itself.
  const DdgParams quiet = MustParams({.clip = 1.0,
                                      .dimension = 4096,
                                      .modulus_bits = 20,
                                      .noise_stddev = 1e-9,
                                      .max_clients = 50});
  absl::StatusOr<DdgEncoded> enc = EncodeDdg(Update(4096, 5.0, 1), quiet, kRoundSeed, rng);
  ASSERT_THAT(enc, IsOk());
  double norm_sq = 0;
  for (uint64_t v : enc->values) {
    const double s =
        v > quiet.modulus_mask / 2 ? static_cast<double>(v) - 0x1p20 : static_cast<double>(v);
    norm_sq += s * s;
  }
  EXPECT_LE(std::sqrt(norm_sq), quiet.l2_sensitivity);
  EXPECT_GT(std::sqrt(norm_sq), 0.99 / quiet.gamma);
}

TEST(DdgCodecTest, GivesUpWhenTheBoundCannotBeMet) {
  DdgParams p = MustParams({.dimension = 64, .noise_stddev = 0.5});
  p.l2_sensitivity = 1;  // hand-edited: only ConditionalRound accepts such params
  const std::vector<double> scaled(64, 10.5);
  SecureRandom rng = Seeded('g');
  EXPECT_THAT(ddg_internal::ConditionalRound(scaled, p, rng),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(EncodeDdg(std::vector<float>(64, 1.0f), p, kRoundSeed, rng),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("MakeDdgParams")));
}

TEST(DdgCodecTest, NegativeValuesWrapModulo) {
  const std::vector<uint64_t> reduced =
      ddg_internal::ReduceModulo({-1, 0, 1, -(int64_t{1} << 19), -1000001}, 0xFFFFF);
  const std::vector<uint64_t> want_reduced = {0xFFFFF, 0, 1, 0x80000, 1048576 - 1000001};
  EXPECT_EQ(reduced, want_reduced);
  // Decoding maps [2^(b-1), 2^b) to negatives: the sum of the rotated integers
  // {-3, 5, -2^19, 2^19 - 1} (mod 2^20, one with the high bits set) inverts exactly.
  const DdgParams p = MustParams({.dimension = 4, .modulus_bits = 20, .max_clients = 10});
  const std::vector<uint64_t> sum = {(uint64_t{7} << 40) | (0x100000 - 3), 5, 0x80000, 0x7FFFF};
  absl::StatusOr<std::vector<float>> decoded = DecodeDdgSum(sum, p, kRoundSeed);
  ASSERT_THAT(decoded, IsOk());
  const std::vector<double> rotated = {-3 * p.gamma, 5 * p.gamma, -0x80000 * p.gamma,
                                       0x7FFFF * p.gamma};
  absl::StatusOr<std::vector<float>> want = InverseRandomizedHadamard(rotated, 4, kRoundSeed);
  ASSERT_THAT(want, IsOk());
  for (size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ((*decoded)[i], (*want)[i]);
}

TEST(DdgCodecTest, EncodingOfNegativeCoordinatesIsCentered) {
  // One client, negligible noise: each centered value is the rotated, scaled input
  // rounded up or down, and about half of them are negative (stored near 2^b).
  const DdgParams p = MustParams({.clip = 1.0,
                                  .dimension = 37,
                                  .modulus_bits = 12,
                                  .noise_stddev = 1e-9,
                                  .min_clients = 1,
                                  .max_clients = 4});
  const std::vector<float> x = Update(37, 0.9, 3);
  absl::StatusOr<std::vector<double>> rotated = RandomizedHadamard(x, kRoundSeed);
  ASSERT_THAT(rotated, IsOk());
  SecureRandom rng = Seeded('w');
  absl::StatusOr<DdgEncoded> enc = EncodeDdg(x, p, kRoundSeed, rng);
  ASSERT_THAT(enc, IsOk());
  int negatives = 0;
  for (size_t i = 0; i < enc->values.size(); ++i) {
    const int64_t v = static_cast<int64_t>(enc->values[i]);
    const int64_t centered = v >= 2048 ? v - 4096 : v;
    negatives += centered < 0 ? 1 : 0;
    EXPECT_LT(std::abs(static_cast<double>(centered) - (*rotated)[i] / p.gamma), 1.0) << i;
  }
  EXPECT_GT(negatives, 5);
}

TEST(DdgCodecTest, OddDimensionsRoundTrip) {
  for (uint64_t n : {1u, 3u, 129u, 1000u}) {
    const DdgParams p = MustParams({.clip = 1.0,
                                    .dimension = n,
                                    .modulus_bits = 18,
                                    .noise_stddev = 1e-6,
                                    .min_clients = 2,
                                    .max_clients = 8});
    ASSERT_EQ(p.padded_dimension, HadamardPaddedSize(n));
    std::vector<std::vector<float>> updates = {Update(n, 0.7, 0), Update(n, 0.4, 1)};
    std::vector<double> err = DecodeError(updates, p);
    ASSERT_EQ(err.size(), n);
    EXPECT_LE(Rms(err), 2 * p.gamma + 1e-6) << n;
  }
}

TEST(DdgCodecTest, RejectsBadInputs) {
  const DdgParams p = MustParams({.dimension = 10});
  SecureRandom rng = Seeded('x');
  EXPECT_THAT(EncodeDdg(std::vector<float>(9, 0.f), p, kRoundSeed, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<float> nan(10, 0.f);
  nan[3] = NAN;
  EXPECT_THAT(EncodeDdg(nan, p, kRoundSeed, rng), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeDdg(std::vector<float>(10, 0.f), p, "short", rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeDdgSum(std::vector<uint64_t>(10, 0), p, kRoundSeed),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeDdgSum(std::vector<uint64_t>(16, 0), p, "short"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::dp
