#include "core/serde/update_codec.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

// The value of an expected success (a failure is reported and gives T()).
template <typename T>
T Ok(absl::StatusOr<T> result) {
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : T();
}

CompressionOptions Method(CompressionMethod m, uint32_t block = 256, double fraction = 0.01) {
  CompressionOptions o;
  o.method = m;
  o.block_size = block;
  o.topk_fraction = fraction;
  return o;
}

std::vector<float> Decode(const std::string& payload, const CompressionOptions& o, size_t n) {
  std::vector<float> out(n);
  absl::Status s = DecodeValues(payload, o, absl::MakeSpan(out));
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// IEEE 754 binary16 patterns worked out by hand: sign | 5-bit exponent (bias 15) | 10 bits.
TEST(UpdateCodecTest, Float16BitPatterns) {
  EXPECT_EQ(FloatToHalfBits(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalfBits(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalfBits(65504.0f), 0x7BFF);              // largest finite
  EXPECT_EQ(FloatToHalfBits(65520.0f), 0x7C00);              // halfway to 2^16: to even = inf
  EXPECT_EQ(FloatToHalfBits(0.1f), 0x2E66);                  // 0.0999755859375
  EXPECT_EQ(FloatToHalfBits(1.0f / 3.0f), 0x3555);
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24: even
  EXPECT_EQ(FloatToHalfBits(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 units: 2
  EXPECT_EQ(FloatToHalfBits(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie: even mantissa
  EXPECT_EQ(FloatToHalfBits(1.0f + std::ldexp(3.0f, -11)), 0x3C02);      // tie: up to even
  EXPECT_EQ(FloatToHalfBits(2047.0f / 1024.0f + std::ldexp(1.0f, -11)), 0x4000);  // carry
  EXPECT_EQ(HalfBitsToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfBitsToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfBitsToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfBitsToFloat(0x8400), -std::ldexp(1.0f, -14));
  EXPECT_EQ(HalfBitsToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(HalfBitsToFloat(0x7C00)));
  EXPECT_TRUE(std::isnan(HalfBitsToFloat(0x7E00)));
}

// bfloat16 is the top half of a binary32: round to nearest even on the low 16 bits.
TEST(UpdateCodecTest, BFloat16BitPatterns) {
  EXPECT_EQ(FloatToBFloat16Bits(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBFloat16Bits(-2.0f), 0xC000);
  EXPECT_EQ(FloatToBFloat16Bits(0.1f), 0x3DCD);  // 0x3DCCCCCD: low half 0xCCCD > 0x8000
  EXPECT_EQ(FloatToBFloat16Bits(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // 0x3F808000: tie, even
  EXPECT_EQ(FloatToBFloat16Bits(1.0f + std::ldexp(3.0f, -8)), 0x3F82);  // 0x3F818000: tie, up
  EXPECT_EQ(BFloat16BitsToFloat(0x3F80), 1.0f);
  EXPECT_EQ(BFloat16BitsToFloat(0x3DCD), 0.10009765625f);
  EXPECT_TRUE(std::isnan(BFloat16BitsToFloat(FloatToBFloat16Bits(NAN))));
}

TEST(UpdateCodecTest, Float16AndBFloat16Payloads) {
  const std::vector<float> x = {1.0f, -2.0f};
  std::string h = Ok(EncodeValues(x, Method(CompressionMethod::kFloat16), 0));
  EXPECT_EQ(h, Bytes({0x00, 0x3C, 0x00, 0xC0}));
  EXPECT_EQ(Decode(h, Method(CompressionMethod::kFloat16), 2), x);
  std::string b = Ok(EncodeValues(x, Method(CompressionMethod::kBFloat16), 0));
  EXPECT_EQ(b, Bytes({0x80, 0x3F, 0x00, 0xC0}));
  EXPECT_EQ(Decode(b, Method(CompressionMethod::kBFloat16), 2), x);
  EXPECT_THAT(EncodeValues(std::vector<float>{70000.0f}, Method(CompressionMethod::kFloat16), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("float16's range")));
  EXPECT_THAT(EncodeValues(std::vector<float>{0, NAN}, Method(CompressionMethod::kBFloat16), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("value 1 is not finite")));
}

// Values that are whole multiples of the block's scale are encoded exactly, whatever the seed:
// block [127, -64, 0, 1] has scale 127/127 = 1, and block [0.5, 0.25] has scale 0.5/127.
TEST(UpdateCodecTest, Int8LayoutAndExactValues) {
  const std::vector<float> x = {127, -64, 0, 1, 0.5f, 0.0f};
  for (uint64_t seed : {0ull, 1ull, 99ull}) {
    std::string p = Ok(EncodeValues(x, Method(CompressionMethod::kInt8, 4), seed));
    // 2 scales (float32 1.0 = 0x3F800000; 0.5/127) then 6 codes.
    ASSERT_EQ(p.size(), 2u * 4 + 6);
    EXPECT_EQ(p.substr(0, 4), Bytes({0x00, 0x00, 0x80, 0x3F}));
    float s2;
    std::memcpy(&s2, p.data() + 4, 4);
    EXPECT_EQ(s2, 0.5f / 127.0f);
    EXPECT_EQ(p.substr(8), Bytes({127, 0xC0, 0, 1, 127, 0}));
    std::vector<float> d = Decode(p, Method(CompressionMethod::kInt8, 4), 6);
    EXPECT_EQ(d[0], 127.0f);
    EXPECT_EQ(d[1], -64.0f);
    EXPECT_EQ(d[3], 1.0f);
    EXPECT_FLOAT_EQ(d[4], 0.5f);
    EXPECT_EQ(d[5], 0.0f);
  }
  // block_size 0: one scale for the tensor.
  std::string one = Ok(EncodeValues(x, Method(CompressionMethod::kInt8, 0), 0));
  EXPECT_EQ(one.size(), 4u + 6);
}

// Unbiasedness: for y = x / s between the codes floor(y) and floor(y) + 1, the decoded value is
// s floor(y) or s (floor(y) + 1), with P(up) = y - floor(y), so E = x. Each draw lies in an
// interval of length s, so by Hoeffding the mean of N independent draws is within t of x except
// with probability 2 exp(-2 N t^2 / s^2): N = 4000, t = 0.05 s gives 2 exp(-20) < 1e-8 per value.
// A biased rounding fails: round-to-nearest is off by 0.5 s on 0.005 (y = 0.5) below.
TEST(UpdateCodecTest, Int8StochasticRoundingIsUnbiased) {
  const std::vector<float> x = {1.27f, 0.3f, -0.71f, 0.005f, -0.0042f, 0.9999f};
  const float s = 1.27f / 127.0f;
  const int kN = 4000;
  std::vector<double> sum(x.size(), 0.0);
  int up = 0;
  for (int seed = 0; seed < kN; ++seed) {
    std::string p = Ok(EncodeValues(x, Method(CompressionMethod::kInt8, 0),
                                                     static_cast<uint64_t>(seed)));
    std::vector<float> d = Decode(p, Method(CompressionMethod::kInt8, 0), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      // Always one of the two neighbouring codes.
      EXPECT_LE(std::fabs(d[i] - x[i]), s * 1.0001f) << i;
      sum[i] += d[i];
    }
    up += d[3] > 0.0f ? 1 : 0;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(sum[i] / kN, x[i], 0.05 * s) << "value " << i;
  }
  // 0.005 = 0.5 s: rounded up about half the time (the bound above, as a count: 0.05 N).
  EXPECT_NEAR(up, kN / 2, 0.05 * kN);
}

TEST(UpdateCodecTest, CounterUniformIsAFunctionOfSeedAndCounter) {
  EXPECT_EQ(CounterUniform(7, 3), CounterUniform(7, 3));
  EXPECT_NE(CounterUniform(7, 3), CounterUniform(7, 4));
  EXPECT_NE(CounterUniform(7, 3), CounterUniform(8, 3));
  double mean = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const float u = CounterUniform(1, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    mean += u;
  }
  // Var(U) = 1/12; 10000 draws: std of the mean 0.0029, 5 sigma 0.0144.
  EXPECT_NEAR(mean / 10000, 0.5, 0.0144);
}

TEST(UpdateCodecTest, TopKKeepsTheLargestMagnitudes) {
  EXPECT_EQ(TopKCount(6, 0.5), 3u);
  EXPECT_EQ(TopKCount(10, 0.01), 1u);   // at least one
  EXPECT_EQ(TopKCount(1000, 0.01), 10u);
  EXPECT_EQ(TopKCount(1001, 0.01), 11u);  // ceil(10.01)
  EXPECT_EQ(TopKCount(3, 1.0), 3u);
  const std::vector<float> x = {0.1f, -5, 3, 0.2f, -4, 1};
  std::string p = Ok(EncodeValues(x, Method(CompressionMethod::kTopK, 256, 0.5), 0));
  // Indices 1, 2, 4 (ascending), then -5, 3, -4.
  std::string want;
  for (uint32_t i : {1u, 2u, 4u}) want.append(reinterpret_cast<const char*>(&i), 4);
  for (float v : {-5.0f, 3.0f, -4.0f}) want.append(reinterpret_cast<const char*>(&v), 4);
  EXPECT_EQ(p, want);
  EXPECT_EQ(Decode(p, Method(CompressionMethod::kTopK), 6),
            (std::vector<float>{0, -5, 3, 0, -4, 0}));
  // Equal magnitudes: the lower index wins.
  std::string tie = Ok(EncodeValues(std::vector<float>{1, -2, 2, -1},
                                                     Method(CompressionMethod::kTopK, 0, 0.25),
                                                     0));
  EXPECT_EQ(Decode(tie, Method(CompressionMethod::kTopK), 4), (std::vector<float>{0, -2, 0, 0}));
}

TEST(UpdateCodecTest, MalformedPayloadsAreRejected) {
  std::vector<float> out(4);
  auto decode = [&](const std::string& p, CompressionOptions o) {
    return DecodeValues(p, o, absl::MakeSpan(out));
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(decode(std::string(7, '\0'), Method(CompressionMethod::kFloat16)),
              StatusIs(kInvalid, HasSubstr("float16 payload of 4 values must be 8 bytes, got 7")));
  EXPECT_THAT(decode(Bytes({0, 0, 0, 0x7C, 0, 0, 0, 0}), Method(CompressionMethod::kFloat16)),
              StatusIs(kInvalid, HasSubstr("float16 value 1 is not finite")));
  EXPECT_THAT(decode(std::string(9, '\0'), Method(CompressionMethod::kInt8, 2)),
              StatusIs(kInvalid, HasSubstr("int8 payload of 4 values must be 12 bytes, got 9")));
  std::string nan_scale(12, '\0');
  const float nan = NAN;
  std::memcpy(nan_scale.data() + 4, &nan, 4);
  EXPECT_THAT(decode(nan_scale, Method(CompressionMethod::kInt8, 2)),
              StatusIs(kInvalid, HasSubstr("int8 scale 1 must be finite and >= 0")));
  std::string neg_scale(8, '\0');
  const float minus = -1.0f;
  std::memcpy(neg_scale.data(), &minus, 4);
  EXPECT_THAT(decode(neg_scale, Method(CompressionMethod::kInt8, 0)),
              StatusIs(kInvalid, HasSubstr("int8 scale 0 must be finite and >= 0")));
  std::string code128(8, '\0');
  code128[6] = static_cast<char>(0x80);
  EXPECT_THAT(decode(code128, Method(CompressionMethod::kInt8, 0)),
              StatusIs(kInvalid, HasSubstr("int8 value 2 is -128")));
  auto topk = [](std::vector<uint32_t> idx, std::vector<float> v) {
    std::string p;
    for (uint32_t i : idx) p.append(reinterpret_cast<const char*>(&i), 4);
    for (float f : v) p.append(reinterpret_cast<const char*>(&f), 4);
    return p;
  };
  EXPECT_THAT(decode(topk({0, 4}, {1, 1}), Method(CompressionMethod::kTopK)),
              StatusIs(kInvalid, HasSubstr("top-k index 1 (4) must be below 4")));
  EXPECT_THAT(decode(topk({2, 2}, {1, 1}), Method(CompressionMethod::kTopK)),
              StatusIs(kInvalid, HasSubstr("above the previous index")));
  EXPECT_THAT(decode(topk({0}, {NAN}), Method(CompressionMethod::kTopK)),
              StatusIs(kInvalid, HasSubstr("top-k value 0 is not finite")));
  EXPECT_THAT(decode(std::string(12, '\0'), Method(CompressionMethod::kTopK)),
              StatusIs(kInvalid, HasSubstr("must be 8 k bytes")));
  EXPECT_THAT(decode(topk({0, 1, 2, 3, 0}, {1, 1, 1, 1, 1}), Method(CompressionMethod::kTopK)),
              StatusIs(kInvalid, HasSubstr("1 <= k <= 4")));
  EXPECT_THAT(decode("", Method(CompressionMethod::kTopK)),
              StatusIs(kInvalid, HasSubstr("1 <= k <= 4")));
}

TEST(UpdateCodecTest, OptionsAreValidatedNamingTheField) {
  EXPECT_THAT(ValidateCompressionOptions(Method(CompressionMethod::kInt8, (1u << 20) + 1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("compression.block_size: must be at most 1048576")));
  TESSERA_EXPECT_OK(ValidateCompressionOptions(Method(CompressionMethod::kInt8, 1u << 20)));
  EXPECT_THAT(ValidateCompressionOptions(Method(CompressionMethod::kTopK, 0, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("compression.topk_fraction")));
  EXPECT_THAT(ValidateCompressionOptions(Method(CompressionMethod::kTopK, 0, 1.5)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("compression.topk_fraction")));
  EXPECT_THAT(CompressionMethodFromName("int4"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("none, fp16, bf16, int8")));
  CompressionMethod m = Ok(CompressionMethodFromName("bf16"));
  EXPECT_EQ(m, CompressionMethod::kBFloat16);
}

ArrayRecord Update(std::vector<float> w, std::vector<int64_t> steps = {3}) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {static_cast<int64_t>(w.size())}, w));
  Tensor s = *Tensor::Zeros("steps", DType::kInt64, {1});
  s.mutable_values<int64_t>()[0] = steps[0];
  r.tensors.push_back(std::move(s));
  return r;
}

TEST(UpdateCodecTest, UpdatesRoundTripAndNonFloatTensorsTravelUnchanged) {
  const ArrayRecord u = Update({0.5f, -0.25f, 0, 1});
  ArrayRecord e = Ok(EncodeUpdate(u, Method(CompressionMethod::kFloat16), 1));
  ASSERT_EQ(e.tensors.size(), 2u);
  EXPECT_EQ(e.tensors[0].DebugString(), "w uint8[8]");
  EXPECT_EQ(e.tensors[1].DebugString(), "steps int64[1]");
  ArrayRecord d = Ok(DecodeUpdate(e, u, Method(CompressionMethod::kFloat16)));
  ASSERT_EQ(d.tensors.size(), 2u);
  EXPECT_EQ(d.tensors[0].values<float>()[1], -0.25f);
  EXPECT_EQ(d.tensors[1].values<int64_t>()[0], 3);
  TESSERA_EXPECT_OK(CheckSameLayout(u, d));

  ArrayRecord swapped;
  swapped.tensors = {e.tensors[1], e.tensors[0]};
  EXPECT_THAT(DecodeUpdate(swapped, u, Method(CompressionMethod::kFloat16)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 0 is \"steps\", expected \"w\"")));
  EXPECT_THAT(DecodeUpdate(u, u, Method(CompressionMethod::kFloat16)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"w\" must be a rank-1 uint8 payload")));
  ArrayRecord short_update;
  short_update.tensors = {e.tensors[0]};
  EXPECT_THAT(DecodeUpdate(short_update, u, Method(CompressionMethod::kFloat16)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has 1 tensors, the model 2")));
  ArrayRecord truncated = e;
  truncated.tensors[0] = *Tensor::Create("w", DType::kUInt8, {6}, std::string(6, '\0'));
  EXPECT_THAT(DecodeUpdate(truncated, u, Method(CompressionMethod::kFloat16)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor \"w\": float16 payload of 4 values must be 8 bytes")));
}

// Error feedback telescopes: with r_0 = 0, sent_t = decode(encode(u_t + r_{t-1})) and
// r_t = u_t + r_{t-1} - sent_t, the sum of sent_t over T rounds is sum u_t - r_T.
TEST(UpdateCodecTest, ErrorFeedbackSumsTelescope) {
  const CompressionOptions o = Method(CompressionMethod::kTopK, 0, 0.25);
  ErrorFeedback ef;
  std::vector<double> sent(8, 0), truth(8, 0);
  for (int t = 0; t < 6; ++t) {
    std::vector<float> w(8);
    for (int i = 0; i < 8; ++i) w[i] = static_cast<float>((i * 7 + t * 3) % 11) / 10.0f - 0.5f;
    for (int i = 0; i < 8; ++i) truth[i] += w[i];
    ArrayRecord u = Update(w);
    ArrayRecord e = Ok(ef.Encode("run-1", u, o, static_cast<uint64_t>(t)));
    ArrayRecord d = Ok(DecodeUpdate(e, u, o));
    ASSERT_EQ(d.tensors.size(), 2u);
    // Top-2 of 8: exactly two nonzeros per round.
    int nonzero = 0;
    for (int i = 0; i < 8; ++i) {
      sent[i] += d.tensors[0].values<float>()[i];
      nonzero += d.tensors[0].values<float>()[i] != 0 ? 1 : 0;
    }
    EXPECT_LE(nonzero, 2);
  }
  ASSERT_EQ(ef.residual().tensors.size(), 2u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(sent[i] + ef.residual().tensors[0].values<float>()[i], truth[i], 1e-5) << i;
  }
  // Without feedback the sum would lose what top-k dropped: the residual is not small here.
  double lost = 0;
  for (int i = 0; i < 8; ++i) lost += std::fabs(ef.residual().tensors[0].values<float>()[i]);
  EXPECT_GT(lost, 0.1);
  // A new run starts from zero.
  ArrayRecord zero = Update({0, 0, 0, 0, 0, 0, 0, 0});
  ArrayRecord e = Ok(ef.Encode("run-2", zero, o, 0));
  for (float r : ef.residual().tensors[0].values<float>()) EXPECT_EQ(r, 0.0f);
  // Disabled: nothing kept.
  e = Ok(ef.Encode("run-2", Update({1, 2, 3, 4, 5, 6, 7, 8}), o, 0, false));
  EXPECT_TRUE(ef.residual().tensors.empty());
}

}  // namespace
}  // namespace tessera
