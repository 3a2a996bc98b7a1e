#include "core/serde/update_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace {

// Tensor data is little-endian (core/model/tensor.h); like the rest of the platform this
// copies host words, which the build requires to be little-endian.
template <typename T>
void Put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t NumBlocks(uint64_t n, uint32_t block_size) {
  if (n == 0) return 0;
  if (block_size == 0) return 1;
  return (n + block_size - 1) / block_size;
}

absl::Status NotFinite(const char* what, size_t index, float v) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", index, " is not finite (", v, ")"));
}

absl::StatusOr<std::string> EncodeInt8(absl::Span<const float> x, uint32_t block_size,
                                       uint64_t seed) {
  const uint64_t n = x.size();
  const uint64_t blocks = NumBlocks(n, block_size);
  const uint64_t b = block_size == 0 ? n : block_size;
  std::string out;
  out.reserve(blocks * 4 + n);
  std::vector<float> scales(blocks);
  for (uint64_t k = 0; k < blocks; ++k) {
    float m = 0;
    for (uint64_t i = k * b; i < std::min(n, (k + 1) * b); ++i) m = std::max(m, std::fabs(x[i]));
    scales[k] = m / 127.0f;
    Put<float>(out, scales[k]);
  }
  for (uint64_t i = 0; i < n; ++i) {
    const float s = scales[i / b];
    int q = 0;
    if (s > 0) {
      const double y = static_cast<double>(x[i]) / static_cast<double>(s);
      q = static_cast<int>(std::floor(y + static_cast<double>(CounterUniform(seed, i))));
      // y is within [-127, 127] up to the rounding of s; never leave the code range.
      q = std::clamp(q, -127, 127);
    }
    out.push_back(static_cast<char>(static_cast<int8_t>(q)));
  }
  return out;
}

std::string EncodeTopK(absl::Span<const float> x, double fraction) {
  const uint64_t n = x.size();
  const uint64_t k = TopKCount(n, fraction);
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  auto larger = [&](uint32_t a, uint32_t c) {
    const float fa = std::fabs(x[a]), fc = std::fabs(x[c]);
    return fa != fc ? fa > fc : a < c;
  };
  if (k < n) std::nth_element(idx.begin(), idx.begin() + static_cast<ptrdiff_t>(k), idx.end(), larger);
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  std::string out;
  out.reserve(k * 8);
  for (uint32_t i : idx) Put<uint32_t>(out, i);
  for (uint32_t i : idx) Put<float>(out, x[i]);
  return out;
}

absl::Status BadSize(absl::string_view method, size_t got, uint64_t want, uint64_t n) {
  return absl::InvalidArgumentError(absl::StrCat(method, " payload of ", n, " values must be ",
                                                 want, " bytes, got ", got));
}

}  // namespace

absl::string_view CompressionMethodName(CompressionMethod method) {
  switch (method) {
    case CompressionMethod::kNone: return "none";
    case CompressionMethod::kFloat16: return "fp16";
    case CompressionMethod::kBFloat16: return "bf16";
    case CompressionMethod::kInt8: return "int8";
    case CompressionMethod::kTopK: return "topk";
  }
  return "unknown";
}

absl::StatusOr<CompressionMethod> CompressionMethodFromName(absl::string_view name) {
  for (CompressionMethod m : {CompressionMethod::kNone, CompressionMethod::kFloat16,
                              CompressionMethod::kBFloat16, CompressionMethod::kInt8,
                              CompressionMethod::kTopK}) {
    if (name == CompressionMethodName(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "compression method must be one of none, fp16, bf16, int8, topk; got \"", name, "\""));
}

absl::Status ValidateCompressionOptions(const CompressionOptions& o) {
  if (o.block_size > kMaxCompressionBlockSize) {
    return absl::InvalidArgumentError(absl::StrCat("compression.block_size: must be at most ",
                                                   kMaxCompressionBlockSize, ", got ",
                                                   o.block_size));
  }
  if (!std::isfinite(o.topk_fraction) || o.topk_fraction < kMinTopKFraction ||
      o.topk_fraction > 1) {
    return absl::InvalidArgumentError(absl::StrCat("compression.topk_fraction: must be in [",
                                                   kMinTopKFraction, ", 1], got ",
                                                   o.topk_fraction));
  }
  return absl::OkStatus();
}

uint16_t FloatToHalfBits(float value) {
  uint32_t f;
  std::memcpy(&f, &value, 4);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t abs = f & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past 65504
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): value = m * 2^-24 with m < 1024, rounded to nearest even.
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below 2^-25: rounds to 0
    const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14 + (113 - exponent)
    uint32_t m = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (m & 1u))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
  uint32_t h = ((abs >> 13) - (112u << 10));
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

float HalfBitsToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exp = (bits >> 10) & 0x1Fu;
  const uint32_t mant = bits & 0x3FFu;
  float magnitude;
  if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    magnitude = mant == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  uint32_t f;
  std::memcpy(&f, &magnitude, 4);
  f |= sign;
  float out;
  std::memcpy(&out, &f, 4);
  return out;
}

uint16_t FloatToBFloat16Bits(float value) {
  uint32_t f;
  std::memcpy(&f, &value, 4);
  if ((f & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((f >> 16) | 0x0040u);  // NaN
  f += 0x7FFFu + ((f >> 16) & 1u);  // round to nearest even on the dropped 16 bits
  return static_cast<uint16_t>(f >> 16);
}

float BFloat16BitsToFloat(uint16_t bits) {
  const uint32_t f = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &f, 4);
  return out;
}

float CounterUniform(uint64_t seed, uint64_t counter) {
  const uint64_t z = SplitMix64(seed + counter * 0x9E3779B97F4A7C15ull);
  return static_cast<float>(z >> 40) * 0x1.0p-24f;
}

uint64_t TopKCount(uint64_t n, double fraction) {
  if (n == 0) return 0;
  const double k = std::ceil(fraction * static_cast<double>(n));
  if (!(k >= 1)) return 1;
  return k >= static_cast<double>(n) ? n : static_cast<uint64_t>(k);
}

absl::StatusOr<std::string> EncodeValues(absl::Span<const float> values,
                                         const CompressionOptions& options, uint64_t seed) {
  TESSERA_RETURN_IF_ERROR(ValidateCompressionOptions(options));
  if (options.method == CompressionMethod::kTopK && values.size() > UINT32_MAX) {
    return absl::InvalidArgumentError("top-k indices are 32-bit: tensor over 2^32 values");
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) return NotFinite("value", i, values[i]);
  }
  std::string out;
  switch (options.method) {
    case CompressionMethod::kNone:
      out.assign(reinterpret_cast<const char*>(values.data()), values.size() * 4);
      return out;
    case CompressionMethod::kFloat16:
      out.reserve(values.size() * 2);
      for (size_t i = 0; i < values.size(); ++i) {
        if (std::fabs(values[i]) > 65504.0f) {
          return absl::InvalidArgumentError(absl::StrCat(
              "value ", i, " (", values[i], ") exceeds float16's range (65504)"));
        }
        Put<uint16_t>(out, FloatToHalfBits(values[i]));
      }
      return out;
    case CompressionMethod::kBFloat16:
      out.reserve(values.size() * 2);
      for (float v : values) Put<uint16_t>(out, FloatToBFloat16Bits(v));
      return out;
    case CompressionMethod::kInt8:
      return EncodeInt8(values, options.block_size, seed);
    case CompressionMethod::kTopK:
      return EncodeTopK(values, options.topk_fraction);
  }
  return absl::InvalidArgumentError("unknown compression method");
}

absl::Status DecodeValues(absl::string_view payload, const CompressionOptions& options,
                          absl::Span<float> out) {
  const uint64_t n = out.size();
  const char* p = payload.data();
  switch (options.method) {
    case CompressionMethod::kNone:
      if (payload.size() != n * 4) return BadSize("float32", payload.size(), n * 4, n);
      for (uint64_t i = 0; i < n; ++i) {
        out[i] = Get<float>(p + 4 * i);
        if (!std::isfinite(out[i])) return NotFinite("float32 value", i, out[i]);
      }
      return absl::OkStatus();
    case CompressionMethod::kFloat16:
    case CompressionMethod::kBFloat16: {
      const bool half = options.method == CompressionMethod::kFloat16;
      if (payload.size() != n * 2) {
        return BadSize(half ? "float16" : "bfloat16", payload.size(), n * 2, n);
      }
      for (uint64_t i = 0; i < n; ++i) {
        const uint16_t bits = Get<uint16_t>(p + 2 * i);
        out[i] = half ? HalfBitsToFloat(bits) : BFloat16BitsToFloat(bits);
        if (!std::isfinite(out[i])) return NotFinite(half ? "float16 value" : "bfloat16 value", i, out[i]);
      }
      return absl::OkStatus();
    }
    case CompressionMethod::kInt8: {
      if (options.block_size > kMaxCompressionBlockSize) {
        return ValidateCompressionOptions(options);
      }
      const uint64_t blocks = NumBlocks(n, options.block_size);
      const uint64_t b = options.block_size == 0 ? n : options.block_size;
      if (payload.size() != blocks * 4 + n) {
        return BadSize("int8", payload.size(), blocks * 4 + n, n);
      }
      for (uint64_t k = 0; k < blocks; ++k) {
        const float s = Get<float>(p + 4 * k);
        if (!std::isfinite(s) || s < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("int8 scale ", k, " must be finite and >= 0, got ", s));
        }
      }
      const char* q = p + blocks * 4;
      for (uint64_t i = 0; i < n; ++i) {
        const int8_t v = static_cast<int8_t>(q[i]);
        if (v == -128) {
          return absl::InvalidArgumentError(
              absl::StrCat("int8 value ", i, " is -128 (codes are -127..127)"));
        }
        out[i] = static_cast<float>(v) * Get<float>(p + 4 * (i / b));
      }
      return absl::OkStatus();
    }
    case CompressionMethod::kTopK: {
      if (payload.size() % 8 != 0 || payload.size() / 8 > n || (n > 0 && payload.empty())) {
        return absl::InvalidArgumentError(
            absl::StrCat("top-k payload of ", n, " values must be 8 k bytes with 1 <= k <= ",
                         n, ", got ", payload.size(), " bytes"));
      }
      const uint64_t k = payload.size() / 8;
      std::fill(out.begin(), out.end(), 0.0f);
      int64_t last = -1;
      for (uint64_t j = 0; j < k; ++j) {
        const uint32_t i = Get<uint32_t>(p + 4 * j);
        if (i >= n || static_cast<int64_t>(i) <= last) {
          return absl::InvalidArgumentError(absl::StrCat(
              "top-k index ", j, " (", i, ") must be below ", n,
              " and above the previous index"));
        }
        last = i;
        const float v = Get<float>(p + 4 * k + 4 * j);
        if (!std::isfinite(v)) return NotFinite("top-k value", j, v);
        out[i] = v;
      }
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("unknown compression method");
}

absl::StatusOr<ArrayRecord> EncodeUpdate(const ArrayRecord& update,
                                         const CompressionOptions& options, uint64_t seed) {
  ArrayRecord out;
  out.tensors.reserve(update.tensors.size());
  for (size_t t = 0; t < update.tensors.size(); ++t) {
    const Tensor& x = update.tensors[t];
    if (x.dtype() != DType::kFloat32) {
      out.tensors.push_back(x);
      continue;
    }
    absl::StatusOr<std::string> payload =
        EncodeValues(x.values<float>(), options, SplitMix64(seed ^ SplitMix64(t)));
    if (!payload.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", x.name(), "\": ", payload.status().message()));
    }
    const int64_t size = static_cast<int64_t>(payload->size());
    TESSERA_ASSIGN_OR_RETURN(Tensor e,
                             Tensor::Create(x.name(), DType::kUInt8, {size}, *std::move(payload)));
    out.tensors.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<ArrayRecord> DecodeUpdate(const ArrayRecord& encoded, const ArrayRecord& layout,
                                         const CompressionOptions& options) {
  if (encoded.tensors.size() != layout.tensors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("compressed update has ",
                                                   encoded.tensors.size(),
                                                   " tensors, the model ",
                                                   layout.tensors.size()));
  }
  ArrayRecord out;
  out.tensors.reserve(layout.tensors.size());
  for (size_t t = 0; t < layout.tensors.size(); ++t) {
    const Tensor& want = layout.tensors[t];
    const Tensor& got = encoded.tensors[t];
    if (got.name() != want.name()) {
      return absl::InvalidArgumentError(absl::StrCat("compressed update tensor ", t, " is \"",
                                                     got.name(), "\", expected \"",
                                                     want.name(), "\""));
    }
    if (want.dtype() != DType::kFloat32) {
      if (got.dtype() != want.dtype() || got.shape() != want.shape()) {
        return absl::InvalidArgumentError(absl::StrCat("compressed update tensor \"", got.name(),
                                                       "\" must be sent as ",
                                                       want.DebugString()));
      }
      out.tensors.push_back(got);
      continue;
    }
    if (got.dtype() != DType::kUInt8 || got.shape().size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "compressed update tensor \"", got.name(), "\" must be a rank-1 uint8 payload, got ",
          got.DebugString()));
    }
    TESSERA_ASSIGN_OR_RETURN(Tensor x, Tensor::Zeros(want.name(), DType::kFloat32, want.shape()));
    absl::Status s = DecodeValues(got.data(), options, x.mutable_values<float>());
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("compressed update tensor \"", got.name(), "\": ", s.message()));
    }
    out.tensors.push_back(std::move(x));
  }
  return out;
}

absl::StatusOr<ArrayRecord> ErrorFeedback::Encode(absl::string_view key, ArrayRecord update,
                                                  const CompressionOptions& options,
                                                  uint64_t seed, bool enabled) {
  if (!enabled) {
    residual_ = ArrayRecord();
    return EncodeUpdate(update, options, seed);
  }
  if (key != key_ || !CheckSameLayout(update, residual_).ok()) {
    key_ = std::string(key);
    residual_ = ArrayRecord();
  }
  if (!residual_.tensors.empty()) {
    for (size_t t = 0; t < update.tensors.size(); ++t) {
      if (update.tensors[t].dtype() != DType::kFloat32) continue;
      absl::Span<float> u = update.tensors[t].mutable_values<float>();
      absl::Span<const float> r = residual_.tensors[t].values<float>();
      for (size_t i = 0; i < u.size(); ++i) u[i] += r[i];
    }
  }
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord encoded, EncodeUpdate(update, options, seed));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord decoded, DecodeUpdate(encoded, update, options));
  for (size_t t = 0; t < update.tensors.size(); ++t) {
    if (update.tensors[t].dtype() != DType::kFloat32) continue;
    absl::Span<float> u = update.tensors[t].mutable_values<float>();
    absl::Span<const float> d = decoded.tensors[t].values<float>();
    for (size_t i = 0; i < u.size(); ++i) u[i] -= d[i];
  }
  residual_ = std::move(update);
  return encoded;
}

}  // namespace tessera
