#include "aggregation/server_optimizer.h"

#include <cmath>
#include <cstddef>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregation/fed_avg.h"
#include "aggregation/internal/kernels.h"
#include "core/base/status_macros.h"

namespace tessera {
namespace aggregation {
namespace {

using Kind = ServerOptimizerOptions::Kind;

bool UsesM(Kind kind) { return kind != Kind::kSgd; }
bool UsesV(Kind kind) {
  return kind == Kind::kAdam || kind == Kind::kYogi || kind == Kind::kAdagrad;
}

absl::Status BadOption(absl::string_view field, double value,
                       absl::string_view range) {
  return absl::InvalidArgumentError(absl::StrCat(
      "ServerOptimizerOptions.", field, " must be ", range, ", got ", value));
}

absl::Status ValidateOptions(const ServerOptimizerOptions& o) {
  switch (o.kind) {
    case Kind::kSgd:
    case Kind::kMomentum:
    case Kind::kAdam:
    case Kind::kYogi:
    case Kind::kAdagrad:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("ServerOptimizerOptions.kind is not a known kind: ",
                       static_cast<int>(o.kind)));
  }
  // Written so that NaN fails every check.
  if (!(o.learning_rate > 0 && std::isfinite(o.learning_rate))) {
    return BadOption("learning_rate", o.learning_rate, "finite and > 0");
  }
  if (!(o.momentum >= 0 && o.momentum < 1)) {
    return BadOption("momentum", o.momentum, "in [0, 1)");
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) {
    return BadOption("beta1", o.beta1, "in [0, 1)");
  }
  if (!(o.beta2 > 0 && o.beta2 < 1)) {
    return BadOption("beta2", o.beta2, "in (0, 1)");
  }
  if (!(o.tau > 0 && std::isfinite(o.tau))) {
    return BadOption("tau", o.tau, "finite and > 0");
  }
  return absl::OkStatus();
}

// A float32 tensor named prefix + name with every element equal to `fill`.
absl::StatusOr<Tensor> StateTensor(absl::string_view prefix, const Tensor& like,
                                   float fill) {
  absl::StatusOr<Tensor> t = Tensor::Zeros(absl::StrCat(prefix, like.name()),
                                           DType::kFloat32, like.shape());
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ServerOptimizer: state tensor for \"", like.name(),
                     "\": ", t.status().message()));
  }
  for (float& x : t->mutable_values<float>()) x = fill;
  return t;
}

absl::Status CheckFinite32(const Tensor& t) {
  auto v = t.values<float>();
  return AllFinite(v.data(), v.size()) ? absl::OkStatus() : CheckFinite(t);
}

struct Rule {
  Kind kind;
  double lr, momentum, beta1, beta2, tau;
};

// One optimizer step over n elements. With apply == false only checks, and
// returns the first index whose new weight or moment is not finite (or -1);
// with apply == true writes x, m (if non-null) and v (if non-null). Each
// element is a pure function of its inputs, so both passes agree.
int64_t StepTensor(const Rule& r, float* x, float* m, float* v, const float* d,
                   size_t n, bool apply) {
  for (size_t j = 0; j < n; ++j) {
    const double dj = d[j];
    double step = dj;
    float mj = 0.0f;
    float vj = 0.0f;
    if (r.kind == Kind::kMomentum) {
      mj = static_cast<float>(r.momentum * m[j] + dj);
      step = mj;
    } else if (r.kind != Kind::kSgd) {
      mj = static_cast<float>(r.beta1 * m[j] + (1.0 - r.beta1) * dj);
      const double d2 = dj * dj;
      const double vo = v[j];
      double vn;
      if (r.kind == Kind::kAdagrad) {
        vn = vo + d2;
      } else if (r.kind == Kind::kYogi) {
        const double sign = vo > d2 ? 1.0 : (vo < d2 ? -1.0 : 0.0);
        vn = vo - (1.0 - r.beta2) * d2 * sign;
      } else {
        vn = r.beta2 * vo + (1.0 - r.beta2) * d2;
      }
      vj = static_cast<float>(vn);
      step = mj / (std::sqrt(static_cast<double>(vj)) + r.tau);
    }
    const auto xj = static_cast<float>(x[j] + r.lr * step);
    if (!apply) {
      if (!std::isfinite(xj) || !std::isfinite(mj) || !std::isfinite(vj)) {
        return static_cast<int64_t>(j);
      }
      continue;
    }
    x[j] = xj;
    if (m != nullptr) m[j] = mj;
    if (v != nullptr) v[j] = vj;
  }
  return -1;
}

bool SameLayout(const Tensor& a, const Tensor& b) {
  return a.name() == b.name() && a.dtype() == b.dtype() &&
         a.shape() == b.shape();
}

}  // namespace

ServerOptimizer::ServerOptimizer(const ServerOptimizerOptions& options,
                                 std::vector<Slot> slots, ArrayRecord m,
                                 ArrayRecord v)
    : options_(options),
      slots_(std::move(slots)),
      m_(std::move(m)),
      v_(std::move(v)) {}

absl::StatusOr<ServerOptimizer> ServerOptimizer::Create(
    const ServerOptimizerOptions& options, const ArrayRecord& layout) {
  TESSERA_RETURN_IF_ERROR(ValidateOptions(options));
  TESSERA_RETURN_IF_ERROR(CheckUniqueNames(layout));
  std::vector<Slot> slots;
  slots.reserve(layout.tensors.size());
  ArrayRecord m;
  ArrayRecord v;
  int64_t next_state = 0;
  const auto v0 = static_cast<float>(options.tau * options.tau);
  for (const Tensor& t : layout.tensors) {
    const bool f32 = t.dtype() == DType::kFloat32;
    slots.push_back(
        Slot{t.name(), t.dtype(), t.shape(), f32 ? next_state : -1});
    if (!f32) continue;
    ++next_state;
    if (UsesM(options.kind)) {
      TESSERA_ASSIGN_OR_RETURN(Tensor mt, StateTensor("m/", t, 0.0f));
      m.tensors.push_back(std::move(mt));
    }
    if (UsesV(options.kind)) {
      TESSERA_ASSIGN_OR_RETURN(Tensor vt, StateTensor("v/", t, v0));
      v.tensors.push_back(std::move(vt));
    }
  }
  return ServerOptimizer(options, std::move(slots), std::move(m), std::move(v));
}

absl::Status ServerOptimizer::CheckLayout(const ArrayRecord& record,
                                          absl::string_view what) const {
  if (record.tensors.size() != slots_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ServerOptimizer: ", what, " has ", record.tensors.size(),
                     " tensors, expected ", slots_.size()));
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    const Tensor& t = record.tensors[i];
    if (t.name() != s.name || t.dtype() != s.dtype || t.shape() != s.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ServerOptimizer: ", what, " tensor ", i, ": expected ", s.name, " ",
          DTypeName(s.dtype), "[", absl::StrJoin(s.shape, ","), "], got ",
          t.DebugString()));
    }
  }
  return absl::OkStatus();
}

absl::Status ServerOptimizer::Step(ArrayRecord& global,
                                   const ArrayRecord& mean_delta) {
  TESSERA_RETURN_IF_ERROR(CheckLayout(global, "global"));
  TESSERA_RETURN_IF_ERROR(CheckLayout(mean_delta, "mean_delta"));

  // Tensors outside the rule: stage global += delta on copies, so that a
  // failure there or below leaves `global` untouched.
  ArrayRecord rest_global;
  ArrayRecord rest_delta;
  std::vector<size_t> rest_index;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].state >= 0) {
      absl::Status s = CheckFinite32(mean_delta.tensors[i]);
      if (!s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("ServerOptimizer: mean_delta: ", s.message()));
      }
      continue;
    }
    rest_global.tensors.push_back(global.tensors[i]);
    rest_delta.tensors.push_back(mean_delta.tensors[i]);
    rest_index.push_back(i);
  }
  if (!rest_index.empty()) {
    absl::Status s = ApplyDelta(rest_global, rest_delta);
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat("ServerOptimizer: ", s.message()));
    }
  }

  const Rule rule{options_.kind,  options_.learning_rate, options_.momentum,
                  options_.beta1, options_.beta2,         options_.tau};
  for (const bool apply : {false, true}) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      const int64_t k = slots_[i].state;
      if (k < 0) continue;
      Tensor& x = global.tensors[i];
      const auto ks = static_cast<size_t>(k);
      float* m = m_.tensors.empty()
                     ? nullptr
                     : m_.tensors[ks].mutable_values<float>().data();
      float* v = v_.tensors.empty()
                     ? nullptr
                     : v_.tensors[ks].mutable_values<float>().data();
      const int64_t bad =
          StepTensor(rule, x.mutable_values<float>().data(), m, v,
                     mean_delta.tensors[i].values<float>().data(),
                     static_cast<size_t>(x.numel()), apply);
      if (bad >= 0) {
        return absl::OutOfRangeError(absl::StrCat(
            "ServerOptimizer: tensor \"", x.name(),
            "\": the step gives a non-finite weight or moment at index ", bad));
      }
    }
  }
  for (size_t k = 0; k < rest_index.size(); ++k) {
    global.tensors[rest_index[k]] = std::move(rest_global.tensors[k]);
  }
  return absl::OkStatus();
}

absl::StatusOr<ArrayRecord> ServerOptimizer::State() const {
  ArrayRecord state;
  state.tensors.reserve(m_.tensors.size() + v_.tensors.size());
  for (const Tensor& t : m_.tensors) state.tensors.push_back(t);
  for (const Tensor& t : v_.tensors) state.tensors.push_back(t);
  return state;
}

absl::Status ServerOptimizer::Restore(const ArrayRecord& state) {
  const size_t nm = m_.tensors.size();
  if (state.tensors.size() != nm + v_.tensors.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ServerOptimizer::Restore: expected ", nm + v_.tensors.size(),
        " state tensors, got ", state.tensors.size()));
  }
  for (size_t k = 0; k < state.tensors.size(); ++k) {
    const Tensor& want = k < nm ? m_.tensors[k] : v_.tensors[k - nm];
    const Tensor& got = state.tensors[k];
    if (!SameLayout(want, got)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ServerOptimizer::Restore: tensor ", k, ": expected ",
                       want.DebugString(), ", got ", got.DebugString()));
    }
    absl::Status s = CheckFinite32(got);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ServerOptimizer::Restore: ", s.message()));
    }
    if (k < nm) continue;
    auto values = got.values<float>();
    for (size_t j = 0; j < values.size(); ++j) {
      if (values[j] < 0.0f) {
        return absl::InvalidArgumentError(
            absl::StrCat("ServerOptimizer::Restore: tensor \"", got.name(),
                         "\" has a negative second moment at index ", j));
      }
    }
  }
  for (size_t k = 0; k < state.tensors.size(); ++k) {
    Tensor& dst = k < nm ? m_.tensors[k] : v_.tensors[k - nm];
    dst = state.tensors[k];
  }
  return absl::OkStatus();
}

absl::Status ScaleInPlace(ArrayRecord& r, double factor) {
  if (!std::isfinite(factor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ScaleInPlace: factor must be finite, got ", factor));
  }
  auto scale = [factor](auto values, bool apply) -> int64_t {
    using T = typename decltype(values)::value_type;
    for (size_t j = 0; j < values.size(); ++j) {
      const auto y = static_cast<T>(values[j] * factor);
      if (!apply && !std::isfinite(y)) return static_cast<int64_t>(j);
      if (apply) values[j] = y;
    }
    return -1;
  };
  for (const bool apply : {false, true}) {
    for (Tensor& t : r.tensors) {
      int64_t bad = -1;
      if (t.dtype() == DType::kFloat32) {
        bad = scale(t.mutable_values<float>(), apply);
      } else if (t.dtype() == DType::kFloat64) {
        bad = scale(t.mutable_values<double>(), apply);
      }
      if (bad >= 0) {
        return absl::OutOfRangeError(
            absl::StrCat("ScaleInPlace: tensor \"", t.name(),
                         "\" is not finite at index ", bad, " after scaling"));
      }
    }
  }
  return absl::OkStatus();
}

double FedNovaScale(double sum_p_over_tau, double sum_p, double sum_p_tau) {
  return sum_p_over_tau * sum_p_tau / (sum_p * sum_p);
}

}  // namespace aggregation
}  // namespace tessera
