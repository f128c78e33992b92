// The CUDA backend's table of operations (native/core/backend.h): each entry takes the tensors
// and the core descriptor and calls our kernels (ops.h) or cuDNN / cuBLAS (dnn.h), all with one
// calling convention: the device index first, then outputs, inputs, sizes or the descriptor.
// The entries run inside enqueue(device, ...) (core/device.h): on the calling thread with the
// device current; they only launch work on the device's stream. Compiled only in builds with
// CUDA (native/sources.json, "cuda"); registers itself while the addon loads.
#include "../core/backend.h"

#include <string>

#include "../core/device.h"
#include "bench.h"
#include "dnn.h"
#include "linear_lt.h"
#include "dynload/loader.h"
#include "ops.h"
#include "probe.h"
#include "runtime.h"

namespace alexnet::cuda {

namespace {

// An optional tensor's data: null when absent.
float* opt_f32(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }
// Read-only (Tensor::cf32): the read leaves the storage's version as it is, so a bfloat16 copy
// of the float32 weights (whose biases these are) stays current (record_copy, core/tensor.h).
const float* opt_cf32(const Tensor& t) { return t.defined() ? t.cf32() : nullptr; }
int index_of(const Tensor& t) { return t.device().index; }

// --- elementwise ---
void fill_f32_op(const Tensor& t, float v) { fill(index_of(t), t.f32(), v, t.numel()); }
void fill_i32_op(const Tensor& t, int32_t v) { fill_i32(index_of(t), t.i32(), v, t.numel()); }
void copy_op(const Tensor& dst, const Tensor& src) {
  copy(index_of(dst), dst.ptr<char>(), src.ptr<char>(), dst.nbytes());  // cudaMemcpyAsync on the stream
}
void scale_op(const Tensor& t, float a) { scale(index_of(t), t.f32(), a, t.numel()); }
void axpy_op(const Tensor& y, float a, const Tensor& x) { axpy(index_of(y), y.f32(), a, x.f32(), y.numel()); }
void to_dtype_op(const Tensor& y, const Tensor& x) {
  if (y.dtype() == x.dtype()) return copy_op(y, x);
  if (x.dtype() == DType::Float32 && y.dtype() == DType::BFloat16)
    return float_to_bf16(index_of(x), y.bf16(), x.f32(), x.numel());
  if (x.dtype() == DType::BFloat16 && y.dtype() == DType::Float32)
    return bf16_to_float(index_of(x), y.f32(), x.bf16(), x.numel());
  fail(code::kDtype, "toDtype: no conversion from ", dtype_name(x.dtype()), " to ", dtype_name(y.dtype()));
}

// x [N, C, H, W] -> y [N, H, W, C], or back (decision 14): kernels/layout.cu
void to_memory_format_op(const Tensor& y, const Tensor& x, bool to_channels_last) {
  const int64_t N = x.size(0);
  const int64_t C = to_channels_last ? x.size(1) : x.size(3);
  const int64_t S = to_channels_last ? x.size(2) * x.size(3) : x.size(1) * x.size(2);
  if (x.dtype() == DType::BFloat16) {
    if (to_channels_last) nchw_to_nhwc_bf16(index_of(x), y.bf16(), x.cptr<uint16_t>(), N, C, S);
    else nhwc_to_nchw_bf16(index_of(x), y.bf16(), x.cptr<uint16_t>(), N, C, S);
  } else {
    if (to_channels_last) nchw_to_nhwc(index_of(x), y.f32(), x.cf32(), N, C, S);
    else nhwc_to_nchw(index_of(x), y.f32(), x.cf32(), N, C, S);
  }
}

// --- activation ---
void relu_forward_op(const Tensor& y, const Tensor& x) { relu_forward(index_of(x), y.f32(), x.f32(), x.numel()); }
void relu_backward_op(const Tensor& dx, const Tensor& dy, const Tensor& y) {
  relu_backward(index_of(y), dx.f32(), dy.f32(), y.f32(), y.numel());
}
void relu_forward_bf16_op(const Tensor& y, const Tensor& x) {
  relu_forward_bf16(index_of(x), y.bf16(), x.cptr<uint16_t>(), x.numel());
}
void relu_backward_bf16_op(const Tensor& dx, const Tensor& dy, const Tensor& y) {
  relu_backward_bf16(index_of(y), dx.bf16(), dy.cptr<uint16_t>(), y.cptr<uint16_t>(), y.numel());
}

// --- cuDNN: convolution, pooling, LRN ---
void conv2d_forward_op(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                       const Conv2dParams& p, bool relu) {
  conv2d_forward(index_of(x), y.f32(), x.f32(), w.f32(), opt_f32(b), p, relu);
}
void conv2d_backward_op(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                        const Tensor& x, const Tensor& w, const Conv2dParams& p, bool accumulate) {
  conv2d_backward(index_of(x), opt_f32(dx), dw.f32(), opt_f32(db), dy.f32(), x.f32(), w.f32(), p, accumulate);
}
void conv2d_forward_bf16_op(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dParams& p, bool relu) {
  const bool f32_out = y.dtype() == DType::Float32;
  conv2d_forward_bf16(index_of(x), f32_out ? y.f32() : nullptr, f32_out ? nullptr : y.bf16(), x.bf16(), w.bf16(),
                      opt_cf32(b), p, relu);
}
void conv2d_backward_bf16_op(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                             const Tensor& x, const Tensor& w, const Conv2dParams& p, bool accumulate) {
  conv2d_backward_bf16(index_of(x), dx.defined() ? dx.bf16() : nullptr, dw.f32(), opt_f32(db), dy.bf16(), x.bf16(),
                       w.bf16(), p, accumulate);
}
// float32: cuDNN in NCHW; channels last: our kernels (kernels/pool.cu), the CPU's tie rule
void max_pool2d_forward_op(const Tensor& y, const Tensor& x, const Pool2dParams& p) {
  if (p.channels_last) return max_pool2d_forward_f32(index_of(x), y.f32(), x.cf32(), p);
  maxpool2d_forward(index_of(x), y.f32(), x.f32(), p);
}
void max_pool2d_backward_op(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                            const Pool2dParams& p) {
  if (p.channels_last) return max_pool2d_backward_f32(index_of(x), dx.f32(), dy.cf32(), x.cf32(), p);
  maxpool2d_backward(index_of(x), dx.f32(), dy.f32(), x.f32(), y.f32(), p);
}
// bfloat16 pooling: our kernels (kernels/pool.cu), the CPU's rules
void max_pool2d_forward_bf16_op(const Tensor& y, const Tensor& x, const Pool2dParams& p) {
  max_pool2d_forward_bf16(index_of(x), y.bf16(), x.cptr<uint16_t>(), p);
}
void max_pool2d_backward_bf16_op(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor&,
                                 const Pool2dParams& p) {
  max_pool2d_backward_bf16(index_of(x), dx.bf16(), dy.cptr<uint16_t>(), x.cptr<uint16_t>(), p);
}
void lrn_forward_op(const Tensor& y, const Tensor& x, const LrnParams& p) {
  lrn_forward(index_of(x), y.f32(), x.f32(), p);
}
void lrn_backward_op(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y, const LrnParams& p) {
  lrn_backward(index_of(x), dx.f32(), dy.f32(), x.f32(), y.f32(), p);
}

// --- cuBLAS: linear, matmul ---
void linear_forward_op(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const LinearParams& p) {
  linear_forward(index_of(x), y.f32(), x.f32(), w.f32(), opt_f32(b), p);
}
void linear_backward_op(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy, const Tensor& x,
                        const Tensor& w, const LinearParams& p, bool accumulate) {
  linear_backward(index_of(x), opt_f32(dx), dw.f32(), opt_f32(db), dy.f32(), x.f32(), w.f32(), p, accumulate);
}
// c [M, N] = op(a) @ op(b), row-major, so the leading dimensions are the stored rows' lengths.
void matmul_op(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulParams& p) {
  const int64_t M = p.M, N = p.N, K = p.K;
  gemm(index_of(a), p.trans_a, p.trans_b, M, N, K, 1.f, a.f32(), p.trans_a ? M : K, b.f32(), p.trans_b ? K : N,
       0.f, c.f32(), N);
}

void linear_forward_bf16_op(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const LinearParams& p) {
  const bool f32_out = y.dtype() == DType::Float32;
  linear_forward_bf16(index_of(x), f32_out ? y.f32() : nullptr, f32_out ? nullptr : y.bf16(), x.bf16(), w.bf16(),
                      opt_cf32(b), p);
}
void linear_backward_bf16_op(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy, const Tensor& x,
                             const Tensor& w, const LinearParams& p, bool accumulate) {
  linear_backward_bf16(index_of(x), dx.defined() ? dx.bf16() : nullptr, dw.f32(), opt_f32(db), dy.bf16(), x.bf16(),
                       w.bf16(), p, accumulate);
}

// --- dropout (the RNG of native/core/rng.h) ---
void dropout_forward_op(const Tensor& y, const Tensor& mask, const Tensor& x, const Tensor& counter,
                        const DropoutParams& p) {
  dropout_forward(index_of(x), y.f32(), mask.f32(), x.f32(), x.numel(), counter.defined() ? counter.i32() : nullptr, p);
}
void dropout_backward_op(const Tensor& dx, const Tensor& dy, const Tensor& mask) {
  dropout_backward(index_of(dy), dx.f32(), dy.f32(), mask.f32(), dy.numel());
}
void dropout_forward_bf16_op(const Tensor& y, const Tensor& mask, const Tensor& x, const Tensor& counter,
                             const DropoutParams& p) {
  dropout_forward_bf16(index_of(x), y.bf16(), mask.f32(), x.cptr<uint16_t>(), x.numel(),
                       counter.defined() ? counter.i32() : nullptr, p);
}
void dropout_backward_bf16_op(const Tensor& dx, const Tensor& dy, const Tensor& mask) {
  dropout_backward_bf16(index_of(dy), dx.bf16(), dy.cptr<uint16_t>(), mask.cf32(), dy.numel());
}

// --- softmax, loss, metrics (a bad label goes to the thread's device-side error record) ---
void softmax_forward_op(const Tensor& probs, const Tensor& z) {
  softmax_forward(index_of(z), probs.f32(), z.f32(), z.size(0), z.size(1));
}
void softmax_cross_entropy_op(const Tensor& loss, const Tensor& grad, const Tensor& z, const Tensor& labels) {
  const int device = index_of(z);
  const int64_t B = z.size(0), C = z.size(1);
  // Per-row losses before the (deterministic) mean; freed (stream-ordered) behind the kernels
  // when this function returns.
  const Tensor scratch = Tensor::empty(Shape::of({B}), DType::Float32, z.device());
  softmax_cross_entropy(device, loss.f32(), grad.f32(), z.f32(), labels.i32(), B, C, scratch.f32(),
                        error_record(device));
}
void topk_correct_op(const Tensor& out, const Tensor& z, const Tensor& labels, int64_t k) {
  const int device = index_of(z);
  topk_correct(device, out.i32(), z.f32(), labels.i32(), z.size(0), z.size(1), k, error_record(device));
}

// --- optimiser (the update rules of native/core/sgd.h) ---
void sgd_step_op(const Tensor& w, const Tensor& g, const Tensor& buf, const Tensor& w16, const Tensor& lr,
                 const SgdParams& p) {
  const double* lr_device = lr.defined() ? reinterpret_cast<const double*>(lr.cptr<char>()) : nullptr;
  sgd_step(index_of(w), w.f32(), g.f32(), opt_f32(buf), w16.defined() ? w16.bf16() : nullptr, lr_device, w.numel(), p);
  if (w16.defined()) record_copy(w16, w);
}

// --- images: on the calling thread. Stream-ordered: the bytes land in a pool block (through
// pinned staging), are normalised into y, and the block is returned to the pool behind the kernel.
void normalize_images_op(const Tensor& y, const uint8_t* pixels, const PixelLut& lut) {
  const int device = index_of(y);
  const size_t bytes = static_cast<size_t>(y.numel());
  const int64_t N = y.size(0), C = y.size(1), HW = y.size(2) * y.size(3);
  DeviceGuard guard(device);
  void* staged = alloc(device, bytes);
  try {
    upload(device, staged, pixels, bytes);
    normalize_images(device, y.f32(), static_cast<const uint8_t*>(staged), N, C, HW, lut);
  } catch (...) {
    free(device, staged);
    throw;
  }
  free(device, staged);
}

// --- services ---
void library_info(InfoSink& o, const LibraryStatus& lib) {
  o.set_bool("found", lib.found);
  o.set_string("path", lib.path);  // the rejected file when found is false (see reason)
  o.set_string("version", lib.version_string);
  o.set_string("why", lib.chosen);  // why this file was taken ("" when not found)
  o.set_string("root", lib.root);   // its installation (site-packages, toolkit root, or folder)
}

// info().cuda of a build with CUDA.
void describe(InfoSink& out) {
  static const ProbeResult probe = cuda::probe();  // once per process
  out.set_bool("compiled", true);
  out.set_bool("deviceFound", probe.available);
  out.set_number("deviceCount", probe.device_count);
  out.set_number("runtimeVersion", probe.runtime_version);
  out.set_number("driverVersion", probe.driver_version);
  out.set_string("architectures", probe.architectures);
  if (!probe.device_name.empty()) out.set_string("deviceName", probe.device_name);
  // cuDNN / cuBLAS, loaded here on the first info() call (not at addon load).
  const Libraries& libs = libraries();
  InfoSink& found = out.object("libraries");
  library_info(found.object("cudnn"), libs.cudnn);
  library_info(found.object("cublas"), libs.cublas);
  InfoSink& lt = found.object("cublasLt");  // resolved with cuBLAS: the fused-epilogue path
  lt.set_bool("found", libs.cublaslt_ok);
  lt.set_string("note", libs.cublaslt_note);
  out.set_bool("cublasLtEpilogues", cublaslt_epilogues());
  // Fully connected calls that ran through cuBLASLt so far, and those that asked for it and fell
  // back to cublasGemmEx (tests and benchmarks tell the path a call took by these).
  const CublasLtCounts lt_counts = cublaslt_counts();
  InfoSink& calls = out.object("cublasLtCalls");
  calls.set_number("forward", static_cast<double>(lt_counts.forward));
  calls.set_number("weightGrad", static_cast<double>(lt_counts.weight_grad));
  calls.set_number("fallbacks", static_cast<double>(lt_counts.fallbacks));
  // Available = a device ran our probe kernel and cuDNN 9 and cuBLAS loaded.
  const bool available = probe.available && libs.cudnn_ok && libs.cublas_ok;
  out.set_bool("available", available);
  out.set_bool("tf32", tf32());
  // Which allocator device 0 uses: the stream-ordered memory pool, or cudaMalloc with our own
  // cache (devices without pools, or ALEXNET_CUDA_MEMPOOL=0).
  if (probe.available) out.set_string("allocator", allocator_name(0));
  // cuDNN descriptors made so far in this process: the per-shape caches make none for a shape
  // already seen (tests compare this before and after a repeated call).
  out.set_number("descriptorsCreated", static_cast<double>(descriptors_created()));
  std::string reason;
  if (!probe.available) reason = probe.reason;
  if (!libs.reason.empty()) reason += (reason.empty() ? "" : "\n") + libs.reason;
  out.set_string("reason", reason);
}

Backend table() {
  Backend b{};
  b.name = "cuda";
  ALEXNET_SET_BACKEND_OPERATORS(b);
  b.lrn_odd_size_only = true;  // cuDNN centres an even window one channel later than PyTorch
  b.set_tf32 = &cuda::set_tf32;
  b.set_deterministic = &cuda::set_deterministic;
  b.set_gemm_epilogues = &cuda::set_cublaslt_epilogues;
  b.describe = describe;
  b.debug_fault = &cuda::debug_fault;
  b.debug_stall = &cuda::debug_stall;
  b.graph_begin = &cuda::graph_begin;
  b.graph_end = &cuda::graph_end;
  b.graph_launch = &cuda::graph_launch;
  b.graph_destroy = &cuda::graph_destroy;
  b.bench_ops = &cuda::bench_alexnet_ops;
  return b;
}

const Backend kCudaBackend = table();
// While the addon loads (this file is linked into every build with CUDA).
const BackendRegistration registration(DeviceType::Cuda, &kCudaBackend);

}  // namespace

}  // namespace alexnet::cuda
