// The per-operator benchmark on a CUDA device (see bench.h).
//
// How one row is timed (Timer::best_ms): one warm-up call (cuDNN's algorithm search, workspace
// growth, lazy kernel loading), then a small kernel holds the stream while the host queues
// `reps` timed calls behind it, each between two events, with the L2 cache flushed before each
// pair. Released, the GPU runs them back to back, so the events time the GPU's work and not the
// host's launch cost; the best repetition is kept, as on the CPU.
#include "bench.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/ops/conv.h"
#include "../core/ops/linear.h"
#include "../core/ops/lrn.h"
#include "../core/ops/pool.h"
#include "dnn.h"
#include "kernels/common.cuh"
#include "linear_lt.h"
#include "ops.h"
#include "runtime.h"

namespace alexnet::cuda {

namespace {

// ---- holding the stream -----------------------------------------------------------------------

__device__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Spins until the host sets *release, or timeout_ns have passed (a safety net: if a launch
// behind it ever waited for the stream, the wait would end instead of hanging).
__global__ void hold_stream_kernel(const volatile int* release /*[1], host-mapped*/, uint64_t timeout_ns) {
  const uint64_t t0 = global_ns();
  while (*release == 0 && global_ns() - t0 < timeout_ns) __nanosleep(2000);
}

constexpr uint64_t kHoldTimeoutNs = 2'000'000'000;  // 2 s

// ---- device buffers ---------------------------------------------------------------------------

// Floats from the device's stream-ordered pool, freed (stream-ordered) at the end of the scope.
class Buffer {
 public:
  Buffer(int device, size_t count)
      : device_(device), count_(count), p_(static_cast<float*>(alloc(device, count * sizeof(float)))) {}
  ~Buffer() { free(device_, p_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* get() const { return p_; }
  size_t count() const { return count_; }

 private:
  int device_;
  size_t count_;
  float* p_;
};

// Uniform [-1, 1) values: up to 1 Mi random floats from the host, then doubled in place by
// device copies (a few copies instead of uploading gigabytes).
void fill_random(int device, const Buffer& b, uint32_t seed) {
  const size_t n = b.count();
  const size_t chunk = std::min<size_t>(n, size_t{1} << 20);
  std::vector<float> host(chunk);
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& v : host) v = u(g);
  upload(device, b.get(), host.data(), chunk * sizeof(float));
  for (size_t done = chunk; done < n;) {
    const size_t k = std::min(done, n - done);
    copy(device, b.get() + done, b.get(), k * sizeof(float));
    done += k;
  }
}

// ---- timing -----------------------------------------------------------------------------------

class Timer {
 public:
  Timer(int device, int reps) : device_(device), stream_(static_cast<cudaStream_t>(stream(device))) {
    start_.resize(static_cast<size_t>(reps), nullptr);
    stop_.resize(static_cast<size_t>(reps), nullptr);
    try {
      for (size_t r = 0; r < start_.size(); ++r) {
        ALEXNET_CUDA_CALL(cudaEventCreate(&start_[r]));
        ALEXNET_CUDA_CALL(cudaEventCreate(&stop_[r]));
      }
      void* flag = nullptr;
      ALEXNET_CUDA_CALL(cudaHostAlloc(&flag, sizeof(int), cudaHostAllocMapped));
      release_ = static_cast<volatile int*>(flag);
      *release_ = 1;
      void* on_device = nullptr;
      ALEXNET_CUDA_CALL(cudaHostGetDevicePointer(&on_device, flag, 0));
      release_on_device_ = static_cast<const volatile int*>(on_device);
      // Writing twice the L2 cache evicts what the previous call left there.
      int l2 = 0;
      ALEXNET_CUDA_CALL(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
      flush_bytes_ = std::max<size_t>(2 * static_cast<size_t>(l2), size_t{8} << 20);
      flush_ = alloc(device, flush_bytes_);
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~Timer() { destroy(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Best of the repetitions of `launch` (which queues work on the device's stream), ms.
  double best_ms(const std::function<void()>& launch) {
    launch();  // warm-up
    ALEXNET_CUDA_CALL(cudaStreamSynchronize(stream_));
    {
      *release_ = 0;
      // Lets the stream go however this block is left (an exception in a launch included).
      struct Release {
        volatile int* flag;
        ~Release() { *flag = 1; }
      } release{release_};
      hold_stream_kernel<<<1, 1, 0, stream_>>>(release_on_device_, kHoldTimeoutNs);
      ALEXNET_CUDA_CHECK_LAUNCH("hold_stream_kernel");
      for (size_t r = 0; r < start_.size(); ++r) {
        ALEXNET_CUDA_CALL(cudaMemsetAsync(flush_, 0, flush_bytes_, stream_));
        ALEXNET_CUDA_CALL(cudaEventRecord(start_[r], stream_));
        launch();
        ALEXNET_CUDA_CALL(cudaEventRecord(stop_[r], stream_));
      }
    }
    ALEXNET_CUDA_CALL(cudaEventSynchronize(stop_.back()));
    double best = 1e300;
    for (size_t r = 0; r < start_.size(); ++r) {
      float ms = 0;
      ALEXNET_CUDA_CALL(cudaEventElapsedTime(&ms, start_[r], stop_[r]));
      best = std::min(best, static_cast<double>(ms));
    }
    return best;
  }

 private:
  void destroy() noexcept {
    cudaStreamSynchronize(stream_);  // nothing queued may still use the flag or the events
    for (cudaEvent_t e : start_)
      if (e) cudaEventDestroy(e);
    for (cudaEvent_t e : stop_)
      if (e) cudaEventDestroy(e);
    start_.clear();
    stop_.clear();
    if (release_) cudaFreeHost(const_cast<int*>(release_));
    release_ = nullptr;
    free(device_, flush_);
    flush_ = nullptr;
    cudaGetLastError();  // a failure here must not be reported by the next, unrelated call
  }

  int device_;
  cudaStream_t stream_;
  std::vector<cudaEvent_t> start_, stop_;
  volatile int* release_ = nullptr;                  // the hold kernel's flag, host side
  const volatile int* release_on_device_ = nullptr;  // the same flag, device side
  void* flush_ = nullptr;
  size_t flush_bytes_ = 0;
};

// Hands the gigabytes the benchmark used back to the driver when it ends, however it ends.
struct ReleaseCachedAtExit {
  int device;
  ~ReleaseCachedAtExit() {
    try {
      release_cached(device);
    } catch (...) {
    }
  }
};

}  // namespace

std::vector<BenchRow> bench_alexnet_ops(int device, int64_t B, int reps) {
  if (B < 1 || reps < 1) fail(code::kArgument, "benchOps: batch and reps must be positive");
  // One benchmark at a time: two on one stream would time each other's work.
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> lock(one_at_a_time);
  // ERR_CUDA_UNAVAILABLE when the device does not exist (before anything else touches it)
  cudaStream_t s = static_cast<cudaStream_t>(stream(device));
  DeviceGuard guard(device);
  ReleaseCachedAtExit release_at_exit{device};
  Timer timer(device, reps);  // destroyed before release_at_exit runs
  const bool tf32_mode = tf32();
  std::vector<BenchRow> rows;

  // ---- ceilings, in the same run, sized to the memory free on the device ----
  size_t free_b = 0, total_b = 0;
  mem_info(device, &free_b, &total_b);
  int64_t n = 8192;
  while (n > 1024 && 3 * static_cast<size_t>(n * n) * sizeof(float) > free_b / 2) n /= 2;
  double gemm_ms[2] = {0, 0};  // [0]: strict FP32, [1]: TF32
  {
    Buffer a(device, static_cast<size_t>(n * n)), b(device, static_cast<size_t>(n * n)),
        c(device, static_cast<size_t>(n * n));
    fill_random(device, a, 1);
    fill_random(device, b, 2);
    for (int mode = 1; mode >= 0; --mode)
      gemm_ms[mode] = timer.best_ms([&] {
        gemm_with_math(device, mode == 1, false, false, n, n, n, 1.f, a.get(), n, b.get(), n, 0.f, c.get(), n);
      });
  }
  release_cached(device);  // the next buffers should not stack on these
  // The bfloat16 matrix rate (cublasGemmEx, 16BF inputs, 32F compute and output, as linear in
  // bfloat16 runs): the ceiling a bfloat16 operator is held to, beside TF32's.
  double gemm_bf16_ms = 0;
  {
    // bfloat16 operands in float buffers of half the count (two bfloat16 per float)
    Buffer a32(device, static_cast<size_t>(n * n)), a16(device, static_cast<size_t>(n * n / 2)),
        b16(device, static_cast<size_t>(n * n / 2)), c(device, static_cast<size_t>(n * n));
    fill_random(device, a32, 6);
    float_to_bf16(device, reinterpret_cast<uint16_t*>(a16.get()), a32.get(), n * n);
    fill_random(device, a32, 7);
    float_to_bf16(device, reinterpret_cast<uint16_t*>(b16.get()), a32.get(), n * n);
    LinearParams lp;
    lp.B = n;
    lp.in = n;
    lp.out = n;
    gemm_bf16_ms = timer.best_ms([&] {
      linear_forward_bf16(device, c.get(), nullptr, reinterpret_cast<const uint16_t*>(a16.get()),
                          reinterpret_cast<const uint16_t*>(b16.get()), nullptr, lp);
    });
  }
  release_cached(device);
  const double gemm_flop = 2.0 * n * n * n;
  const double peak_gflops = gemm_flop / gemm_ms[tf32_mode ? 1 : 0] / 1e6;
  const std::string gemm_shape = bench_dims({n, n, n});
  const char* mode_name[2] = {"fp32", "tf32"};
  for (int mode : {tf32_mode ? 1 : 0, tf32_mode ? 0 : 1}) {
    const bool ceiling = (mode == 1) == tf32_mode;
    rows.push_back(compute_row(std::string("sgemm ") + mode_name[mode] + (ceiling ? " (ceiling)" : ""),
                               gemm_shape, gemm_ms[mode], gemm_flop, peak_gflops));
  }
  // its own ceiling (fraction 1): bfloat16 operators are measured against it, not against TF32's
  rows.push_back(compute_row("gemm bf16 (ceiling)", gemm_shape, gemm_bf16_ms, gemm_flop, gemm_flop / gemm_bf16_ms / 1e6));
  size_t bytes = size_t{1} << 30;
  while (bytes > (size_t{64} << 20) && 2 * bytes > free_b / 2) bytes /= 2;
  double copy_ms = 0;
  {
    Buffer src(device, bytes / sizeof(float)), dst(device, bytes / sizeof(float));
    ALEXNET_CUDA_CALL(cudaMemsetAsync(src.get(), 0, bytes, s));
    copy_ms = timer.best_ms([&] { copy(device, dst.get(), src.get(), bytes); });
  }
  release_cached(device);
  const double copy_bytes = 2.0 * static_cast<double>(bytes);  // read + write
  const double peak_gbps = copy_bytes / copy_ms / 1e6;
  rows.push_back(memory_row("memcpy (ceiling)", std::to_string(bytes >> 20) + " MiB device to device", copy_ms,
                            copy_bytes, peak_gbps));

  // ---- the five convolutions: cuDNN (+ our bias kernels); with channels_last (opt-in,
  // docs/architecture.md decision 14) NHWC tensors and KRSC filters, the weight's transpose and
  // the weight gradient's transpose back included, as the operator runs them ----
  const auto bench_convs = [&](bool channels_last) {
    const std::string suffix = channels_last ? " (channels last)" : "";
    for (const BenchConv& cv : kBenchConvs) {
      // The descriptor the operator itself would run with (native/core/ops/conv.h).
      const Shape xs = channels_last ? Shape::of({B, cv.H, cv.H, cv.C}) : Shape::of({B, cv.C, cv.H, cv.H});
      const Conv2dParams g = conv2d_params("benchOps", xs, Shape::of({cv.O, cv.C, cv.k, cv.k}), {cv.s, cv.s},
                                           {cv.p, cv.p}, {1, 1}, 1, channels_last);
      const int64_t Ho = g.Ho;  // = g.Wo = cv.out()
      Buffer x(device, static_cast<size_t>(B * cv.C * cv.H * cv.H)), w(device, static_cast<size_t>(cv.O * cv.C * cv.k * cv.k)),
          bias(device, static_cast<size_t>(cv.O));
      fill_random(device, x, 3);
      fill_random(device, w, 4);
      fill_random(device, bias, 5);
      Buffer y(device, static_cast<size_t>(B * cv.O * Ho * Ho)), dx(device, x.count()), dw(device, w.count()),
          db(device, bias.count());
      const double flop = 2.0 * B * cv.O * Ho * Ho * cv.C * cv.k * cv.k;
      const std::string shape = (channels_last ? bench_dims({B, cv.H, cv.H, cv.C}) : bench_dims({B, cv.C, cv.H, cv.H})) + " * " + bench_dims({cv.O, cv.C, cv.k, cv.k});
      const double f = timer.best_ms([&] {
        conv2d_forward(device, y.get(), x.get(), w.get(), bias.get(), g, /*relu=*/false);
      });
      rows.push_back(compute_row(std::string(cv.name) + ".forward" + suffix, shape, f, flop, peak_gflops));
      const bool first = std::string(cv.name) == "conv1";  // the first layer needs no gradInput
      const double bw = timer.best_ms([&] {
        conv2d_backward(device, first ? nullptr : dx.get(), dw.get(), db.get(), y.get(), x.get(), w.get(), g, false);
      });
      rows.push_back(compute_row(std::string(cv.name) + ".backward" + suffix, shape, bw, flop * (first ? 1 : 2), peak_gflops));
    }
  };
  bench_convs(false);

  // ---- memory-bound operators at conv1's output size: our ReLU kernels, cuDNN pooling and LRN ----
  {
    const int64_t C = kBenchActC, H = kBenchActH;
    const size_t count = static_cast<size_t>(B * C * H * H);
    const Pool2dParams pg = pool2d_params("benchOps", Shape::of({B, C, H, H}), {kBenchPoolK, kBenchPoolK},
                                          {kBenchPoolS, kBenchPoolS}, {0, 0});
    const int64_t Hp = pg.Ho;  // = pg.Wo
    // As localResponseNorm runs it on CUDA: [N, C, H*W] in float32 hyper-parameters.
    const LrnParams lp = lrn_params("benchOps", Shape::of({B, C, H, H}), kBenchLrnSize, kBenchLrnAlpha, kBenchLrnBeta,
                                    kBenchLrnK, /*odd_size_only=*/true);
    Buffer x(device, count), y(device, count), dx(device, count), py(device, static_cast<size_t>(B * C * Hp * Hp));
    fill_random(device, x, 6);
    const std::string shape = bench_dims({B, C, H, H});
    const auto n_elem = static_cast<int64_t>(count);
    const double r = timer.best_ms([&] { relu_forward(device, y.get(), x.get(), n_elem); });
    rows.push_back(memory_row("relu.forward", shape, r, 8.0 * count, peak_gbps));
    const double rbw = timer.best_ms([&] { relu_backward(device, dx.get(), y.get(), x.get(), n_elem); });
    rows.push_back(memory_row("relu.backward", shape, rbw, 12.0 * count, peak_gbps));
    const double pf = timer.best_ms([&] { maxpool2d_forward(device, py.get(), x.get(), pg); });
    const double pbytes = 4.0 * (count + py.count());
    rows.push_back(memory_row("maxpool1.forward", shape, pf, pbytes, peak_gbps));
    // gradOutput: the pooled output itself (any values do; cuDNN needs the real output as y)
    const double pbw = timer.best_ms([&] { maxpool2d_backward(device, dx.get(), py.get(), x.get(), py.get(), pg); });
    rows.push_back(memory_row("maxpool1.backward", shape, pbw, 2 * pbytes, peak_gbps));
    const double lf = timer.best_ms([&] { lrn_forward(device, y.get(), x.get(), lp); });
    rows.push_back(memory_row("lrn1.forward", shape, lf, 8.0 * count, peak_gbps));
    // gradOutput: the output itself, as on the CPU
    const double lbw = timer.best_ms([&] { lrn_backward(device, dx.get(), y.get(), x.get(), y.get(), lp); });
    rows.push_back(memory_row("lrn1.backward", shape, lbw, 12.0 * count, peak_gbps));
  }

  // ---- the three linear layers: cuBLAS (+ our bias kernels); again at the end through cuBLASLt ----
  // suffix names the rows; lt: the counts of cuBLASLt calls are read around each timing, and a
  // row whose calls all fell back to cuBLAS says so on its shape.
  const auto bench_linears = [&](const std::string& suffix, bool lt) {
    for (const BenchLinear& fc : kBenchLinears) {
      const LinearParams lin{B, fc.in, fc.out};
      Buffer x(device, static_cast<size_t>(B * fc.in)), w(device, static_cast<size_t>(fc.in * fc.out)),
          bias(device, static_cast<size_t>(fc.out));
      fill_random(device, x, 7);
      fill_random(device, w, 8);
      fill_random(device, bias, 9);
      Buffer y(device, static_cast<size_t>(B * fc.out)), dx(device, x.count()), dw(device, w.count()),
          db(device, bias.count());
      const double flop = 2.0 * B * fc.in * fc.out;
      const std::string shape = bench_dims({B, fc.in}) + " * " + bench_dims({fc.out, fc.in}) + "^T";
      const auto path = [&](uint64_t before, uint64_t after) { return lt && after == before ? " [fell back to cuBLAS]" : ""; };
      uint64_t before = cublaslt_counts().forward;
      const double f = timer.best_ms([&] { linear_forward(device, y.get(), x.get(), w.get(), bias.get(), lin); });
      rows.push_back(compute_row(std::string(fc.name) + ".forward" + suffix, shape + path(before, cublaslt_counts().forward),
                                 f, flop, peak_gflops, 4.0 * w.count()));
      before = cublaslt_counts().weight_grad;
      const double bw = timer.best_ms([&] {
        linear_backward(device, dx.get(), dw.get(), db.get(), y.get(), x.get(), w.get(), lin, false);
      });
      rows.push_back(compute_row(std::string(fc.name) + ".backward" + suffix,
                                 shape + path(before, cublaslt_counts().weight_grad), bw, 2 * flop, peak_gflops,
                                 8.0 * w.count()));
    }
  };
  // the linear rows with the cuBLASLt switch as given, restored after (also when a row throws)
  const auto bench_linears_with = [&](bool lt_on, const char* suffix) {
    const bool was_on = cublaslt_epilogues();
    set_cublaslt_epilogues(lt_on);
    try {
      bench_linears(suffix, lt_on);
    } catch (...) {
      set_cublaslt_epilogues(was_on);
      throw;
    }
    set_cublaslt_epilogues(was_on);
  };
  bench_linears_with(false, "");

  // ---- our bias kernels alone, at conv1's output size (CUDA only: on the CPU the bias is part
  // of the convolution) ----
  // Inside conv.forward / conv.backward they are hidden behind cuDNN's time; here each is
  // measured against the copy ceiling: the epilogue reads and writes y once, the gradient
  // reads dy once (the [C] outputs and partial sums are negligible).
  {
    const int64_t C = kBenchActC, S = kBenchActH * kBenchActH;
    const size_t count = static_cast<size_t>(B * C * S);
    Buffer y(device, count), bias(device, static_cast<size_t>(C)), db(device, static_cast<size_t>(C));
    fill_random(device, y, 10);
    fill_random(device, bias, 11);
    const int64_t partials = bias_backward_scratch(B, C, S);
    Buffer scratch(device, static_cast<size_t>(std::max<int64_t>(partials, 1)));
    const std::string shape = bench_dims({B, C, kBenchActH, kBenchActH});
    // relu on: every element takes the whole epilogue; repeated calls keep y finite (>= 0 + bias)
    const double ef = timer.best_ms([&] { bias_relu_forward(device, y.get(), bias.get(), B, C, S, /*relu=*/true); });
    rows.push_back(memory_row("bias_relu.forward", shape, ef, 8.0 * count, peak_gbps));
    const double bb = timer.best_ms([&] {
      bias_backward(device, db.get(), y.get(), B, C, S, /*accumulate=*/false, partials > 0 ? scratch.get() : nullptr);
    });
    rows.push_back(memory_row("bias.backward", shape, bb, 4.0 * count, peak_gbps));
  }

  // ---- channels last, beside the NCHW rows above on the same shapes: the convolutions, and max
  // pooling by our NHWC kernel ----
  bench_convs(true);
  {
    const int64_t C = kBenchActC, H = kBenchActH;
    const size_t count = static_cast<size_t>(B * C * H * H);
    const Pool2dParams pg = pool2d_params("benchOps", Shape::of({B, H, H, C}), {kBenchPoolK, kBenchPoolK},
                                          {kBenchPoolS, kBenchPoolS}, {0, 0}, /*channels_last=*/true);
    Buffer x(device, count), dx(device, count), py(device, static_cast<size_t>(B * C * pg.Ho * pg.Wo));
    fill_random(device, x, 6);
    const std::string shape = bench_dims({B, H, H, C});
    const double pbytes = 4.0 * (count + py.count());
    const double pf = timer.best_ms([&] { max_pool2d_forward_f32(device, py.get(), x.get(), pg); });
    rows.push_back(memory_row("maxpool1.forward (channels last)", shape, pf, pbytes, peak_gbps));
    const double pbw = timer.best_ms([&] { max_pool2d_backward_f32(device, dx.get(), py.get(), x.get(), pg); });
    rows.push_back(memory_row("maxpool1.backward (channels last)", shape, pbw, 2 * pbytes, peak_gbps));
  }

  // ---- the linear layers through cuBLASLt (setCublasLtEpilogues): the bias in the forward
  // product's epilogue, the bias gradient in the weight gradient's (BGRADB), beside the cuBLAS
  // rows above in the same run ----
  bench_linears_with(true, " (cuBLASLt)");
  return rows;
}

}  // namespace alexnet::cuda
