// RMSNorm, rotary position embeddings and SwiGLU as passes over the rows (fused_ops.h).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "client/lm/transformer/fused_ops.h"
#include "client/lm/transformer/thread_split.h"

namespace tessera::lm::internal {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// About this many elements per thread's share before a pass is split over threads
// (ParallelRows).
constexpr int64_t kGrainElements = 32768;

int64_t RowGrain(int64_t width) { return std::max<int64_t>(1, kGrainElements / width); }

struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  // y = w * (x * r), r = 1 / sqrt(mean(x^2) + eps) per row.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            double eps) {
    const at::Tensor xc = x.contiguous();
    const at::Tensor wc = w.contiguous();
    const int64_t width = xc.size(-1);
    const int64_t rows = xc.numel() / width;
    at::Tensor y = at::empty_like(xc);
    at::Tensor rstd = at::empty({rows}, xc.options());
    const float* xp = xc.data_ptr<float>();
    const float* wp = wc.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = rstd.data_ptr<float>();
    ParallelRows(rows, RowGrain(width), xc, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = xp + r * width;
        float* yr = yp + r * width;
        double squares = 0;
        for (int64_t j = 0; j < width; ++j) squares += double(xr[j]) * xr[j];
        const float rs = 1.0f / std::sqrt(static_cast<float>(squares / double(width)) +
                                          static_cast<float>(eps));
        for (int64_t j = 0; j < width; ++j) yr[j] = wp[j] * (xr[j] * rs);
        rp[r] = rs;
      }
    });
    ctx->save_for_backward({xc, wc, rstd});
    return y;
  }

  // dx_k = r w_k g_k - x_k r^3 / n * sum_j w_j g_j x_j (the weight is frozen: no dw).
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const std::vector<at::Tensor> saved = ctx->get_saved_variables();
    const at::Tensor g = grad[0].contiguous();
    const int64_t width = saved[0].size(-1);
    const int64_t rows = saved[0].numel() / width;
    at::Tensor dx = at::empty_like(saved[0]);
    const float* xp = saved[0].data_ptr<float>();
    const float* wp = saved[1].data_ptr<float>();
    const float* rp = saved[2].data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* dp = dx.data_ptr<float>();
    ParallelRows(rows, RowGrain(width), g, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = xp + r * width;
        const float* gr = gp + r * width;
        float* dr = dp + r * width;
        double dot = 0;
        for (int64_t j = 0; j < width; ++j) dot += double(wp[j]) * gr[j] * xr[j];
        const float rs = rp[r];
        const float c = static_cast<float>(dot / double(width)) * rs * rs * rs;
        for (int64_t j = 0; j < width; ++j) dr[j] = rs * wp[j] * gr[j] - xr[j] * c;
      }
    });
    return {dx, at::Tensor(), at::Tensor()};
  }
};

// Rotary embedding of x [batch, heads, seq, dim] (any strides with a unit last stride) into
// a contiguous [batch, heads, seq, dim]: out = x * cos + rotate_half(x) * sin with
// rotate_half(x) = cat(-x2, x1) over the two halves of dim. `transpose_back`: the backward
// map (the transpose: g * cos + [g2 * sin2, -g1 * sin1]).
void RotateRows(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                at::Tensor& out, bool transpose_back) {
  const int64_t batch = x.size(0), heads = x.size(1), seq = x.size(2), dim = x.size(3);
  const int64_t half = dim / 2;
  const int64_t sb = x.stride(0), sh = x.stride(1), ss = x.stride(2);
  const float* xp = x.data_ptr<float>();
  const float* cp = cos.data_ptr<float>();
  const float* sp = sin.data_ptr<float>();
  float* op = out.data_ptr<float>();
  ParallelRows(batch * heads * seq, RowGrain(dim), x, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t s = row % seq;
      const int64_t h = (row / seq) % heads;
      const int64_t b = row / (seq * heads);
      const float* xr = xp + b * sb + h * sh + s * ss;
      const float* c = cp + s * dim;
      const float* sn = sp + s * dim;
      float* o = op + row * dim;
      if (!transpose_back) {
        for (int64_t i = 0; i < half; ++i) {
          o[i] = xr[i] * c[i] - xr[i + half] * sn[i];
          o[i + half] = xr[i + half] * c[i + half] + xr[i] * sn[i + half];
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          o[i] = xr[i] * c[i] + xr[i + half] * sn[i + half];
          o[i + half] = xr[i + half] * c[i + half] - xr[i] * sn[i];
        }
      }
    }
  });
}

struct RotaryFn : public torch::autograd::Function<RotaryFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    const at::Tensor xs = x.stride(3) == 1 ? x : x.contiguous();
    const at::Tensor c = cos.contiguous();
    const at::Tensor s = sin.contiguous();
    at::Tensor out = at::empty(x.sizes(), x.options());
    RotateRows(xs, c, s, out, false);
    ctx->save_for_backward({c, s});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const std::vector<at::Tensor> saved = ctx->get_saved_variables();
    const at::Tensor g = grad[0].stride(3) == 1 ? grad[0] : grad[0].contiguous();
    at::Tensor dx = at::empty(g.sizes(), g.options());
    RotateRows(g, saved[0], saved[1], dx, true);
    return {dx, at::Tensor(), at::Tensor()};
  }
};

// A [..., width] tensor's rows as a [rows, width] view (a copy only where the strides allow
// no view; the stacked gate/up views of FrozenLinear's output need none).
at::Tensor Rows(const at::Tensor& t) { return t.reshape({-1, t.size(-1)}); }

// Each pass is split by rows over the threads (ParallelRows); every row is computed by the
// same ATen kernels as unsplit, so the split changes no bit.
struct SwiGluFn : public torch::autograd::Function<SwiGluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->save_for_backward({gate, up});
    const at::Tensor g = Rows(gate);
    const at::Tensor u = Rows(up);
    at::Tensor out = at::empty(g.sizes(), g.options());
    ParallelRows(g.size(0), RowGrain(g.size(1)), g, [&](int64_t begin, int64_t end) {
      at::Tensor o = out.narrow(0, begin, end - begin);
      at::silu_out(o, g.narrow(0, begin, end - begin));
      o.mul_(u.narrow(0, begin, end - begin));
    });
    return out.view(gate.sizes());
  }

  // d up = g silu(gate); d gate = g up silu'(gate), silu' = s (1 + gate (1 - s)) with
  // s = sigmoid(gate) (ATen's silu_backward).
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const std::vector<at::Tensor> saved = ctx->get_saved_variables();
    const at::Tensor g = Rows(saved[0]);
    const at::Tensor u = Rows(saved[1]);
    const at::Tensor dy = Rows(grad[0]);
    const bool need_gate = ctx->needs_input_grad(0);
    const bool need_up = ctx->needs_input_grad(1);
    at::Tensor d_gate = need_gate ? at::empty(g.sizes(), g.options()) : at::Tensor();
    at::Tensor d_up = need_up ? at::empty(g.sizes(), g.options()) : at::Tensor();
    ParallelRows(g.size(0), RowGrain(g.size(1)), dy, [&](int64_t begin, int64_t end) {
      const at::Tensor g_rows = g.narrow(0, begin, end - begin);
      const at::Tensor dy_rows = dy.narrow(0, begin, end - begin);
      if (need_up) {
        at::Tensor o = d_up.narrow(0, begin, end - begin);
        at::silu_out(o, g_rows);
        o.mul_(dy_rows);
      }
      if (need_gate) {
        at::Tensor o = d_gate.narrow(0, begin, end - begin);
        at::silu_backward_out(o, dy_rows * u.narrow(0, begin, end - begin), g_rows);
      }
    });
    return {need_gate ? d_gate.view(saved[0].sizes()) : at::Tensor(),
            need_up ? d_up.view(saved[1].sizes()) : at::Tensor()};
  }
};

bool FusableCpuFloat(const at::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == at::kFloat;
}

}  // namespace

bool CanFuseRmsNorm(const at::Tensor& x, const at::Tensor& weight) {
  return FusableCpuFloat(x) && FusableCpuFloat(weight) && x.dim() >= 1 &&
         weight.dim() == 1 && weight.size(0) == x.size(-1) &&
         !(weight.requires_grad() && at::GradMode::is_enabled());
}

at::Tensor FusedRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNormFn::apply(x, weight, eps);
}

bool CanFuseRotary(const at::Tensor& x, const at::Tensor& cos) {
  return FusableCpuFloat(x) && FusableCpuFloat(cos) && x.dim() == 4 && x.size(3) % 2 == 0 &&
         cos.dim() == 2 && cos.size(0) == x.size(2) && cos.size(1) == x.size(3);
}

at::Tensor FusedRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return RotaryFn::apply(x, cos, sin);
}

bool CanFuseSwiGlu(const at::Tensor& gate, const at::Tensor& up) {
  return FusableCpuFloat(gate) && FusableCpuFloat(up) && gate.sizes() == up.sizes();
}

at::Tensor FusedSwiGlu(const at::Tensor& gate, const at::Tensor& up) {
  return SwiGluFn::apply(gate, up);
}

}  // namespace tessera::lm::internal
