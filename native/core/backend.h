// One backend interface (docs/architecture.md, decision 8): a table of operations per device
// kind, which the CPU backend (native/cpu/backend.cc) and the CUDA backend
// (native/cuda/backend.cc, compiled only in builds with CUDA) each fill in and register while
// the addon loads. The binding parses and validates a call (descriptors: native/core/ops/*.h,
// native/core/sgd.h), then calls the table of the tensors' device: no backend #ifdef and no
// per-backend translation there.
//
// Unless an entry says otherwise it runs inside a task on the device's queue (the binding wraps
// it in enqueue(device, ...), core/device.h): on the CPU on the worker thread, on CUDA at once on
// the calling thread with the device current, launching work on its stream. Tensors are views on
// the device; an undefined Tensor stands for an absent optional one (no bias, gradient not
// wanted). Shapes were checked by the binding: entries trust them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench.h"
#include "ops/conv.h"
#include "ops/dropout.h"
#include "ops/image.h"
#include "ops/linear.h"
#include "ops/lrn.h"
#include "ops/pool.h"
#include "sgd.h"
#include "tensor.h"

namespace alexnet {

// Where a backend writes what it reports about itself (info().cuda): ordered keys, JS types.
class InfoSink {
 public:
  virtual ~InfoSink() = default;
  virtual void set_bool(const char* key, bool v) = 0;
  virtual void set_number(const char* key, double v) = 0;
  virtual void set_string(const char* key, const std::string& v) = 0;
  // A nested object at `key`, alive as long as this sink.
  virtual InfoSink& object(const char* key) = 0;
};

struct Backend {
  const char* name;  // "cpu", "cuda"

  // --- elementwise, in place ---
  void (*fill_f32)(const Tensor& t, float value);
  void (*fill_i32)(const Tensor& t, int32_t value);
  void (*copy)(const Tensor& dst, const Tensor& src);  // same dtype and shape
  void (*scale)(const Tensor& t, float alpha);
  void (*axpy)(const Tensor& y, float alpha, const Tensor& x);  // x may be y itself
  // y = x converted to y's dtype (same shape; float32 <-> bfloat16 by native/core/bf16.h, or a
  // copy when the dtypes agree)
  void (*to_dtype)(const Tensor& y, const Tensor& x);

  // y = x permuted between memory formats (float32 or bfloat16, y's dtype = x's): to_channels_last
  // x [N, C, H, W] -> y [N, H, W, C], else x [N, H, W, C] -> y [N, C, H, W] (decision 14)
  void (*to_memory_format)(const Tensor& y, const Tensor& x, bool to_channels_last);

  // --- activation ---
  void (*relu_forward)(const Tensor& y, const Tensor& x);
  void (*relu_backward)(const Tensor& dx, const Tensor& dy, const Tensor& y);
  // every tensor bfloat16
  void (*relu_forward_bf16)(const Tensor& y, const Tensor& x);
  void (*relu_backward_bf16)(const Tensor& dx, const Tensor& dy, const Tensor& y);

  // --- convolution (+ bias, + fused ReLU) ---
  // p.channels_last: x, y, dx, dy are [N, H, W, C]-ordered; w, dw stay [O, C/groups, kH, kW].
  void (*conv2d_forward)(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                         const Conv2dParams& p, bool relu);
  // dx, db may be undefined (not wanted); with `accumulate` dw and db are added to.
  void (*conv2d_backward)(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                          const Tensor& x, const Tensor& w, const Conv2dParams& p, bool accumulate);
  // x, w bfloat16; bias float32 or undefined; y float32 or bfloat16 (float32 accumulation, the
  // bias added in float32, then ReLU, y rounded once on the CPU; CUDA: see native/cuda/dnn.h)
  void (*conv2d_forward_bf16)(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                              const Conv2dParams& p, bool relu);
  // dy, x, w bfloat16; dx bfloat16 (or undefined); dw float32; db float32 (or undefined)
  void (*conv2d_backward_bf16)(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                               const Tensor& x, const Tensor& w, const Conv2dParams& p, bool accumulate);

  // --- max pooling --- (p.channels_last: every tensor [N, H, W, C]-ordered)
  void (*max_pool2d_forward)(const Tensor& y, const Tensor& x, const Pool2dParams& p);
  void (*max_pool2d_backward)(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                              const Pool2dParams& p);
  // every tensor bfloat16 (y is not used by the backward: the arg-max is recomputed from x)
  void (*max_pool2d_forward_bf16)(const Tensor& y, const Tensor& x, const Pool2dParams& p);
  void (*max_pool2d_backward_bf16)(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                                   const Pool2dParams& p);

  // --- local response normalisation ---
  // True when the backend computes odd windows only (cuDNN centres an even one differently).
  bool lrn_odd_size_only;
  void (*lrn_forward)(const Tensor& y, const Tensor& x, const LrnParams& p);
  void (*lrn_backward)(const Tensor& dx, const Tensor& dy, const Tensor& x, const Tensor& y,
                       const LrnParams& p);

  // --- fully connected, matrix product ---
  void (*linear_forward)(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                         const LinearParams& p);
  void (*linear_backward)(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                          const Tensor& x, const Tensor& w, const LinearParams& p, bool accumulate);
  void (*matmul)(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulParams& p);
  // x, w bfloat16; bias float32 or undefined; y float32 or bfloat16 (float32 accumulation, the
  // bias added in float32, y rounded once)
  void (*linear_forward_bf16)(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                              const LinearParams& p);
  // dy, x, w bfloat16; dx bfloat16 (or undefined); dw float32; db float32 (or undefined)
  void (*linear_backward_bf16)(const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                               const Tensor& x, const Tensor& w, const LinearParams& p, bool accumulate);

  // --- dropout ---
  // counter: undefined, or int32 [2] holding the stream position, read when the draw runs and
  // advanced by p.advance after it (native/core/ops/dropout.h); p.relu: the fused ReLU + dropout
  void (*dropout_forward)(const Tensor& y, const Tensor& mask, const Tensor& x, const Tensor& counter,
                          const DropoutParams& p);
  void (*dropout_backward)(const Tensor& dx, const Tensor& dy, const Tensor& mask);
  // y, x, dx, dy bfloat16; mask float32, the same mask dropout_forward draws for p
  void (*dropout_forward_bf16)(const Tensor& y, const Tensor& mask, const Tensor& x, const Tensor& counter,
                               const DropoutParams& p);
  void (*dropout_backward_bf16)(const Tensor& dx, const Tensor& dy, const Tensor& mask);

  // --- softmax and loss (a bad label is reported by the device's next read) ---
  void (*softmax_forward)(const Tensor& probs, const Tensor& logits);
  void (*softmax_cross_entropy)(const Tensor& loss, const Tensor& grad, const Tensor& logits,
                                const Tensor& labels);

  // --- optimiser, metrics ---
  // buf is undefined iff p.momentum == 0; w_bf16 (bfloat16, w's shape) undefined or written
  // with bf16(w) after the update in the same pass, then recorded as w's copy (record_copy);
  // lr, when defined, is int32 [2] holding a double's bits (native/core/sgd.h) read when the
  // step runs, in place of p.lr
  void (*sgd_step)(const Tensor& w, const Tensor& g, const Tensor& buf, const Tensor& w_bf16, const Tensor& lr,
                   const SgdParams& p);
  void (*topk_correct)(const Tensor& correct, const Tensor& logits, const Tensor& labels, int64_t k);

  // --- on the calling thread: the backend orders the work on its queue itself ---
  // y [N, C, H, W] from the host bytes `pixels` (N*C*H*W of them, copied before it returns).
  void (*normalize_images)(const Tensor& y, const uint8_t* pixels, const PixelLut& lut);

  // --- the backend's own services (calling thread) ---
  // TF32 math for FP32 convolutions and matrix products (null: no such mode)
  void (*set_tf32)(bool on);
  // Deterministic algorithms only (setDeterministic; null: the backend always is deterministic)
  void (*set_deterministic)(bool on);
  // Fused GEMM epilogues from a vendor library for the fully connected layers (setCublasLtEpilogues;
  // null: the backend has no such switch)
  void (*set_gemm_epilogues)(bool on);
  // What info() reports for this device kind (null: the binding reports the build's default)
  void (*describe)(InfoSink& out);
  // Test aid: makes the device fault (null: not supported)
  void (*debug_fault)(int index, double delay_ms);
  // Test aid: queues a kernel that only spins for delay_ms (the stream is busy meanwhile).
  void (*debug_stall)(int index, double delay_ms);
  // CUDA graphs of the device's stream (null: the backend has none). begin starts capturing
  // what the calling thread queues; end stops it and returns an id for the instantiated graph,
  // or throws (the capture is over either way); launch queues one replay; destroy frees it.
  void (*graph_begin)(int index);
  int64_t (*graph_end)(int index);
  void (*graph_launch)(int index, int64_t id);
  void (*graph_destroy)(int index, int64_t id);
  // The per-operator benchmark (native/core/bench.h). Blocks: called off the JS thread.
  std::vector<BenchRow> (*bench_ops)(int index, int64_t batch, int reps);
};

// Sets every operator entry of the Backend `b` (all but the name, lrn_odd_size_only and the
// services) to the function named <entry>_op in the scope where it is expanded: each backend
// names its entries so (native/cpu/backend.cc, native/cuda/backend.cc). One list for both
// tables, so an operator added here fails to compile in a backend that lacks its function
// instead of leaving a null pointer in that table.
#define ALEXNET_SET_BACKEND_OPERATORS(b)                  \
  do {                                                    \
    (b).fill_f32 = fill_f32_op;                           \
    (b).fill_i32 = fill_i32_op;                           \
    (b).copy = copy_op;                                   \
    (b).scale = scale_op;                                 \
    (b).axpy = axpy_op;                                   \
    (b).to_dtype = to_dtype_op;                           \
    (b).to_memory_format = to_memory_format_op;           \
    (b).relu_forward = relu_forward_op;                   \
    (b).relu_backward = relu_backward_op;                 \
    (b).relu_forward_bf16 = relu_forward_bf16_op;         \
    (b).relu_backward_bf16 = relu_backward_bf16_op;       \
    (b).conv2d_forward = conv2d_forward_op;               \
    (b).conv2d_backward = conv2d_backward_op;             \
    (b).conv2d_forward_bf16 = conv2d_forward_bf16_op;     \
    (b).conv2d_backward_bf16 = conv2d_backward_bf16_op;   \
    (b).max_pool2d_forward = max_pool2d_forward_op;       \
    (b).max_pool2d_backward = max_pool2d_backward_op;     \
    (b).max_pool2d_forward_bf16 = max_pool2d_forward_bf16_op; \
    (b).max_pool2d_backward_bf16 = max_pool2d_backward_bf16_op; \
    (b).lrn_forward = lrn_forward_op;                     \
    (b).lrn_backward = lrn_backward_op;                   \
    (b).linear_forward = linear_forward_op;               \
    (b).linear_backward = linear_backward_op;             \
    (b).matmul = matmul_op;                               \
    (b).linear_forward_bf16 = linear_forward_bf16_op;     \
    (b).linear_backward_bf16 = linear_backward_bf16_op;   \
    (b).dropout_forward = dropout_forward_op;             \
    (b).dropout_backward = dropout_backward_op;           \
    (b).dropout_forward_bf16 = dropout_forward_bf16_op;   \
    (b).dropout_backward_bf16 = dropout_backward_bf16_op; \
    (b).softmax_forward = softmax_forward_op;             \
    (b).softmax_cross_entropy = softmax_cross_entropy_op; \
    (b).sgd_step = sgd_step_op;                           \
    (b).topk_correct = topk_correct_op;                   \
    (b).normalize_images = normalize_images_op;           \
  } while (false)

// Called once by each backend while the addon loads, through a static BackendRegistration in
// its source.
void register_backend(DeviceType type, const Backend* backend);
// Registers `backend` while the addon loads: `const BackendRegistration registration(type, &table);`
struct BackendRegistration {
  BackendRegistration(DeviceType type, const Backend* backend) { register_backend(type, backend); }
};
// The backend of `type`, or null when this build has none.
const Backend* find_backend(DeviceType type);
// The backend of `device`'s kind; throws ERR_CUDA_UNAVAILABLE when this build has none.
const Backend& backend_for(Device device);

}  // namespace alexnet
