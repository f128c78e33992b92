// The CPU backend's table of operations (native/core/backend.h): each entry takes the tensors
// and the core descriptor and calls the CPU kernel of its family (native/cpu/<family>.h). They
// run on the CPU queue's worker thread (the binding enqueues them), except where backend.h says.
#include "../core/backend.h"

#include <cstring>
#include <memory>

#include "../core/device.h"
#include "activation.h"
#include "bench.h"
#include "bf16.h"
#include "conv_bf16.h"
#include "conv.h"
#include "dropout.h"
#include "elementwise.h"
#include "image.h"
#include "layout.h"
#include "linear.h"
#include "linear_packed.h"
#include "loss.h"
#include "lrn.h"
#include "metrics.h"
#include "pool.h"
#include "sgd.h"

namespace alexnet::cpu {

namespace {

// An optional tensor's data: null when absent.
float* opt_f32(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }
// Read-only (Tensor::cf32: the read leaves data cached from the tensor current).
const float* opt_cf32(const Tensor& t) { return t.defined() ? t.cf32() : nullptr; }

void fill_f32_op(const Tensor& t, float v) { fill_f32(t.f32(), v, t.numel()); }
void fill_i32_op(const Tensor& t, int32_t v) { fill_i32(t.i32(), v, t.numel()); }
void copy_op(const Tensor& dst, const Tensor& src) { copy_bytes(dst.ptr<char>(), src.ptr<char>(), dst.nbytes()); }
void scale_op(const Tensor& t, float a) { scale_f32(t.f32(), a, t.numel()); }
void axpy_op(const Tensor& y, float a, const Tensor& x) { axpy_f32(y.f32(), a, x.f32(), y.numel()); }
void to_dtype_op(const Tensor& y, const Tensor& x) {
  if (y.dtype() == x.dtype()) return copy_bytes(y.ptr<char>(), x.ptr<char>(), y.nbytes());
  if (x.dtype() == DType::Float32 && y.dtype() == DType::BFloat16) return float_to_bf16(y.bf16(), x.f32(), x.numel());
  if (x.dtype() == DType::BFloat16 && y.dtype() == DType::Float32) return bf16_to_float(y.f32(), x.bf16(), x.numel());
  fail(code::kDtype, "toDtype: no conversion from ", dtype_name(x.dtype()), " to ", dtype_name(y.dtype()));
}

void relu_forward_op(const Tensor& y, const Tensor& x) { relu_forward(y.f32(), x.f32(), x.numel()); }
void relu_backward_op(const Tensor& dx, const Tensor& dy, const Tensor& y) {
  relu_backward(dx.f32(), dy.f32(), y.f32(), y.numel());
}
void relu_forward_bf16_op(const Tensor& y, const Tensor& x) { relu_forward_bf16(y.bf16(), x.cptr<uint16_t>(), x.numel()); }
void relu_backward_bf16_op(const Tensor& dx, const Tensor& dy, const Tensor& y) {
  relu_backward_bf16(dx.bf16(), dy.cptr<uint16_t>(), y.cptr<uint16_t>(), y.numel());
}

void conv2d_forward_nchw(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                       const Conv2dParams& p, bool relu) {
  conv2d_forward(y.f32(), x.cf32(), w.cf32(), opt_cf32(b), p, relu, &w);
}
void conv2d_backward_nchw(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                        const Tensor& x, const Tensor& w, const Conv2dParams& p, bool accumulate) {
  conv2d_backward(opt_f32(dx), dw.f32(), opt_f32(db), dy.cf32(), x.cf32(), w.cf32(), p, accumulate, &w);
}
void conv2d_forward_bf16_nchw(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dParams& p, bool relu) {
  const bool f32_out = y.dtype() == DType::Float32;
  conv2d_forward_bf16(f32_out ? y.f32() : nullptr, f32_out ? nullptr : y.bf16(), x.bf16(), w.bf16(), opt_cf32(b), p,
                      relu);
}
void conv2d_backward_bf16_nchw(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                             const Tensor& x, const Tensor& w, const Conv2dParams& p, bool accumulate) {
  conv2d_backward_bf16(dx.defined() ? dx.bf16() : nullptr, dw.f32(), opt_f32(db), dy.bf16(), x.bf16(), w.bf16(), p,
                       accumulate);
}

void max_pool2d_forward_nchw(const Tensor& y, const Tensor& x, const Pool2dParams& p) {
  max_pool2d_forward(y.f32(), x.f32(), p);
}
// The CPU recomputes each window's maximum from x: the forward output is not needed.
void max_pool2d_backward_nchw(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor&,
                            const Pool2dParams& p) {
  max_pool2d_backward(dx.f32(), dy.f32(), x.f32(), p);
}
void max_pool2d_forward_bf16_nchw(const Tensor& y, const Tensor& x, const Pool2dParams& p) {
  max_pool2d_forward_bf16(y.bf16(), x.cptr<uint16_t>(), p);
}
void max_pool2d_backward_bf16_nchw(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor&,
                                 const Pool2dParams& p) {
  max_pool2d_backward_bf16(dx.bf16(), dy.cptr<uint16_t>(), x.cptr<uint16_t>(), p);
}


// --- channels last (decision 14): the NCHW kernels above between transposes, the readable
// reference of the CUDA path. The weight and its gradient are PyTorch's [O, C/groups, kH, kW]
// in both formats, so only activations and their gradients move.

// y = x permuted (N, C, S) <-> (N, S, C) in x's element type; C and S as the tensor is read in
// NCHW terms: to_nhwc takes x [N, C, S], else x [N, S, C].
void permute(const Tensor& y, const Tensor& x, int64_t N, int64_t C, int64_t S, bool to_nhwc) {
  if (x.dtype() == DType::BFloat16) {
    if (to_nhwc) nchw_to_nhwc(y.bf16(), x.cptr<uint16_t>(), N, C, S);
    else nhwc_to_nchw(y.bf16(), x.cptr<uint16_t>(), N, C, S);
  } else {
    if (to_nhwc) nchw_to_nhwc(y.f32(), x.cf32(), N, C, S);
    else nhwc_to_nchw(y.f32(), x.cf32(), N, C, S);
  }
}

void to_memory_format_op(const Tensor& y, const Tensor& x, bool to_channels_last) {
  if (to_channels_last) permute(y, x, x.size(0), x.size(1), x.size(2) * x.size(3), true);  // x [N, C, H, W]
  else permute(y, x, x.size(0), x.size(3), x.size(1) * x.size(2), false);                  // x [N, H, W, C]
}

// An [N, H, W, C]-ordered tensor as a new [N, C, H, W] one (undefined stays undefined).
Tensor to_nchw(const Tensor& t, int64_t N, int64_t C, int64_t H, int64_t W) {
  if (!t.defined()) return t;
  Tensor r = Tensor::empty(Shape::of({N, C, H, W}), t.dtype(), t.device());
  permute(r, t, N, C, H * W, false);
  return r;
}
// A new [N, C, H, W] tensor for a result that `dst` ([N, H, W, C]) will receive (undefined
// stays undefined)...
Tensor nchw_like(const Tensor& dst, int64_t N, int64_t C, int64_t H, int64_t W) {
  return dst.defined() ? Tensor::empty(Shape::of({N, C, H, W}), dst.dtype(), dst.device()) : dst;
}
// ... and copied there.
void store_nhwc(const Tensor& dst, const Tensor& src, int64_t N, int64_t C, int64_t H, int64_t W) {
  if (dst.defined()) permute(dst, src, N, C, H * W, true);
}

template <void (*Op)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&, bool)>
void conv2d_forward_any(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p,
                        bool relu) {
  if (!p.channels_last) return Op(y, x, w, b, p, relu);
  Conv2dParams q = p;
  q.channels_last = false;
  const Tensor yn = nchw_like(y, p.N, p.O, p.Ho, p.Wo);
  Op(yn, to_nchw(x, p.N, p.C, p.H, p.W), w, b, q, relu);
  store_nhwc(y, yn, p.N, p.O, p.Ho, p.Wo);
}

template <void (*Op)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                     const Conv2dParams&, bool)>
void conv2d_backward_any(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy, const Tensor& x,
                         const Tensor& w, const Conv2dParams& p, bool accumulate) {
  if (!p.channels_last) return Op(dx, dw, db, dy, x, w, p, accumulate);
  Conv2dParams q = p;
  q.channels_last = false;
  const Tensor dxn = nchw_like(dx, p.N, p.C, p.H, p.W);
  Op(dxn, dw, db, to_nchw(dy, p.N, p.O, p.Ho, p.Wo), to_nchw(x, p.N, p.C, p.H, p.W), w, q, accumulate);
  store_nhwc(dx, dxn, p.N, p.C, p.H, p.W);
}

template <void (*Op)(const Tensor&, const Tensor&, const Pool2dParams&)>
void max_pool2d_forward_any(const Tensor& y, const Tensor& x, const Pool2dParams& p) {
  if (!p.channels_last) return Op(y, x, p);
  Pool2dParams q = p;
  q.channels_last = false;
  const Tensor yn = nchw_like(y, p.N, p.C, p.Ho, p.Wo);
  Op(yn, to_nchw(x, p.N, p.C, p.H, p.W), q);
  store_nhwc(y, yn, p.N, p.C, p.Ho, p.Wo);
}

template <void (*Op)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Pool2dParams&)>
void max_pool2d_backward_any(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                             const Pool2dParams& p) {
  if (!p.channels_last) return Op(dx, dy, x, y, p);
  Pool2dParams q = p;
  q.channels_last = false;
  const Tensor dxn = nchw_like(dx, p.N, p.C, p.H, p.W);
  Op(dxn, to_nchw(dy, p.N, p.C, p.Ho, p.Wo), to_nchw(x, p.N, p.C, p.H, p.W), to_nchw(y, p.N, p.C, p.Ho, p.Wo), q);
  store_nhwc(dx, dxn, p.N, p.C, p.H, p.W);
}

constexpr auto conv2d_forward_op = conv2d_forward_any<conv2d_forward_nchw>;
constexpr auto conv2d_backward_op = conv2d_backward_any<conv2d_backward_nchw>;
constexpr auto conv2d_forward_bf16_op = conv2d_forward_any<conv2d_forward_bf16_nchw>;
constexpr auto conv2d_backward_bf16_op = conv2d_backward_any<conv2d_backward_bf16_nchw>;
constexpr auto max_pool2d_forward_op = max_pool2d_forward_any<max_pool2d_forward_nchw>;
constexpr auto max_pool2d_backward_op = max_pool2d_backward_any<max_pool2d_backward_nchw>;
constexpr auto max_pool2d_forward_bf16_op = max_pool2d_forward_any<max_pool2d_forward_bf16_nchw>;
constexpr auto max_pool2d_backward_bf16_op = max_pool2d_backward_any<max_pool2d_backward_bf16_nchw>;

void lrn_forward_op(const Tensor& y, const Tensor& x, const LrnParams& p) { lrn_forward(y.f32(), x.f32(), p); }
// D is recomputed from x: the forward output is not needed.
void lrn_backward_op(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor&, const LrnParams& p) {
  lrn_backward(dx.f32(), dy.f32(), x.f32(), p);
}

void linear_forward_op(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const LinearParams& p) {
  if (linear_forward_packed(y.f32(), x.cf32(), w, opt_cf32(b), p.B, p.in, p.out, p.relu)) return;
  linear_forward(y.f32(), x.cf32(), w.cf32(), opt_cf32(b), p.B, p.in, p.out);
  if (p.relu) relu_forward(y.f32(), y.f32(), p.B * p.out);  // in place, while y is still in cache
}
void linear_backward_op(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy, const Tensor& x,
                        const Tensor& w, const LinearParams& p, bool accumulate) {
  linear_backward(opt_f32(dx), dw.f32(), opt_f32(db), dy.f32(), x.f32(), w.f32(), p.B, p.in, p.out, accumulate);
}
void matmul_op(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  matmul(c.f32(), a.f32(), b.f32(), p.M, p.N, p.K, p.trans_a, p.trans_b);
}
void linear_forward_bf16_op(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const LinearParams& p) {
  const bool f32_out = y.dtype() == DType::Float32;
  linear_forward_bf16(f32_out ? y.f32() : nullptr, f32_out ? nullptr : y.bf16(), x.bf16(), w.bf16(), opt_cf32(b),
                      p.B, p.in, p.out);
  if (!p.relu) return;
  if (f32_out) {
    relu_forward(y.f32(), y.f32(), p.B * p.out);
  } else {
    // bfloat16: negative values and -0 (sign bit set, not NaN) to +0; NaN kept, as relu does
    uint16_t* v = y.bf16();
    for (int64_t i = 0; i < p.B * p.out; ++i)
      if ((v[i] & 0x8000u) != 0 && (v[i] & 0x7fffu) <= 0x7f80u) v[i] = 0;
  }
}
void linear_backward_bf16_op(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy, const Tensor& x,
                             const Tensor& w, const LinearParams& p, bool accumulate) {
  linear_backward_bf16(dx.defined() ? dx.bf16() : nullptr, dw.f32(), opt_f32(db), dy.bf16(), x.bf16(), w.bf16(), p.B,
                       p.in, p.out, accumulate);
}

void dropout_forward_op(const Tensor& y, const Tensor& mask, const Tensor& x, const Tensor& counter,
                        const DropoutParams& p) {
  dropout_forward(y.f32(), mask.f32(), x.f32(), x.numel(), counter.defined() ? counter.i32() : nullptr, p);
}
void dropout_backward_op(const Tensor& dx, const Tensor& dy, const Tensor& mask) {
  dropout_backward(dx.f32(), dy.f32(), mask.f32(), dy.numel());
}
void dropout_forward_bf16_op(const Tensor& y, const Tensor& mask, const Tensor& x, const Tensor& counter,
                             const DropoutParams& p) {
  dropout_forward_bf16(y.bf16(), mask.f32(), x.cptr<uint16_t>(), x.numel(), counter.defined() ? counter.i32() : nullptr,
                       p);
}
void dropout_backward_bf16_op(const Tensor& dx, const Tensor& dy, const Tensor& mask) {
  dropout_backward_bf16(dx.bf16(), dy.cptr<uint16_t>(), mask.cf32(), dy.numel());
}

void softmax_forward_op(const Tensor& probs, const Tensor& z) {
  softmax_forward(probs.f32(), z.f32(), z.size(0), z.size(1));
}
// A bad label throws on the worker: the queue keeps the error for the next read.
void softmax_cross_entropy_op(const Tensor& loss, const Tensor& grad, const Tensor& z, const Tensor& labels) {
  softmax_cross_entropy(loss.f32(), grad.f32(), z.f32(), labels.i32(), z.size(0), z.size(1));
}

void sgd_step_op(const Tensor& w, const Tensor& g, const Tensor& buf, const Tensor& w16, const Tensor& lr,
                 const SgdParams& p) {
  SgdParams q = p;
  if (lr.defined()) std::memcpy(&q.lr, lr.cptr<char>(), sizeof(double));  // read now, in queue order
  sgd_step(w.f32(), g.f32(), opt_f32(buf), w16.defined() ? w16.bf16() : nullptr, w.numel(), q);
  if (w16.defined()) record_copy(w16, w);
}

void topk_correct_op(const Tensor& out, const Tensor& z, const Tensor& labels, int64_t k) {
  out.i32()[0] = -1;  // what stays when a bad label throws (the CUDA kernel writes the same)
  out.i32()[0] = topk_correct(z.f32(), labels.i32(), z.size(0), z.size(1), k);
}

// On the calling thread: the bytes are copied at once (the caller may reuse its array) and
// normalised on the worker.
void normalize_images_op(const Tensor& y, const uint8_t* pixels, const PixelLut& lut) {
  const size_t bytes = static_cast<size_t>(y.numel());
  const int64_t N = y.size(0), C = y.size(1), HW = y.size(2) * y.size(3);
  auto copy = std::shared_ptr<uint8_t[]>(new uint8_t[bytes]);
  std::memcpy(copy.get(), pixels, bytes);
  enqueue(y.device(), [y, copy, N, C, HW, lut] { normalize_images(y.f32(), copy.get(), N, C, HW, lut); });
}

std::vector<BenchRow> bench_ops_op(int, int64_t batch, int reps) { return bench_alexnet_ops(batch, reps); }

Backend table() {
  Backend b{};
  b.name = "cpu";
  ALEXNET_SET_BACKEND_OPERATORS(b);
  b.lrn_odd_size_only = false;  // PyTorch's centring of even windows
  b.set_tf32 = nullptr;         // no TF32 on the CPU
  b.set_gemm_epilogues = nullptr;  // the CPU applies bias and ReLU itself, always
  b.describe = nullptr;         // info().cpu is the binding's (it reads the CPU's settings itself)
  b.debug_fault = nullptr;
  b.debug_stall = nullptr;  // the CPU queue stalls in the binding (debugStall)
  b.graph_begin = nullptr;  // no graphs: the queue's tasks are already cheap to submit
  b.graph_end = nullptr;
  b.graph_launch = nullptr;
  b.graph_destroy = nullptr;
  b.bench_ops = bench_ops_op;
  return b;
}

const Backend kCpuBackend = table();
const BackendRegistration registration(DeviceType::Cpu, &kCpuBackend);  // while the addon loads

}  // namespace

}  // namespace alexnet::cpu
