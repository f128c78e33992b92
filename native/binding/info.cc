// What this build contains and what it found at run time (`alexnet info`).
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../core/parallel.h"
#include "../cpu/conv_direct.h"
#include "../cpu/bf16.h"
#include "../cpu/gemm.h"
#include "../cpu/isa.h"
#include "common.h"

#if defined(ALEXNET_WITH_CBLAS) && defined(ALEXNET_OPENBLAS)
#include <cblas.h>
#endif

#ifndef ALEXNET_BUILD_SYSTEM
#define ALEXNET_BUILD_SYSTEM "unknown"
#endif

namespace alexnet::binding {

namespace {

// info()'s objects as a backend's InfoSink (native/core/backend.h).
class JsInfo : public InfoSink {
 public:
  JsInfo(Napi::Env env, Napi::Object object) : env_(env), object_(object) {}
  void set_bool(const char* key, bool v) override { object_.Set(key, Napi::Boolean::New(env_, v)); }
  void set_number(const char* key, double v) override { object_.Set(key, Napi::Number::New(env_, v)); }
  void set_string(const char* key, const std::string& v) override { object_.Set(key, Napi::String::New(env_, v)); }
  InfoSink& object(const char* key) override {
    Napi::Object child = Napi::Object::New(env_);
    object_.Set(key, child);
    children_.push_back(std::make_unique<JsInfo>(env_, child));
    return *children_.back();
  }

 private:
  Napi::Env env_;
  Napi::Object object_;
  std::vector<std::unique_ptr<JsInfo>> children_;
};

}  // namespace

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("buildSystem", ALEXNET_BUILD_SYSTEM);
  out.Set("napiVersion", NAPI_VERSION);

  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("available", true);
  cpu.Set("blas", cpu::blas_name());
  cpu.Set("blasCompiled", cpu::blas_compiled());
  cpu.Set("gemm", cpu::gemm_backend() == cpu::GemmBackend::Blas ? "blas" : "portable");
  cpu.Set("threads", num_threads());
  const cpu::ConvAlgo algo = cpu::conv_algo();
  cpu.Set("convAlgorithm", algo == cpu::ConvAlgo::Auto           ? "auto"
                           : algo == cpu::ConvAlgo::Direct       ? "direct"
                           : algo == cpu::ConvAlgo::DirectAvx2   ? "direct-avx2"
                           : algo == cpu::ConvAlgo::Winograd     ? "winograd"
                           : algo == cpu::ConvAlgo::WinogradGemm ? "winograd-gemm"
                                                                 : "im2col");
  const cpu::ConvIsa isa = cpu::conv_direct_cpu_isa();
  cpu.Set("directConv", isa != cpu::ConvIsa::None);
  cpu.Set("directConvIsa", isa == cpu::ConvIsa::Avx512 ? "avx512" : isa == cpu::ConvIsa::Avx2 ? "avx2" : "none");
#if defined(ALEXNET_WITH_CBLAS) && defined(ALEXNET_OPENBLAS)
  cpu.Set("blasThreads", openblas_get_num_threads());
#endif
  // The instruction-set cap (setCpuIsa / ALEXNET_CPU_ISA), the CPU's best set and what our
  // kernels use under the cap.
  cpu.Set("isaCap", cpu::isa_cap_name(cpu::isa_cap()));
  cpu.Set("isaHardware", cpu::simd_level_name(cpu::simd_hardware()));
  cpu.Set("isa", cpu::simd_level_name(cpu::simd_level()));
  cpu.Set("bf16Hardware", cpu::bf16_hardware());
  cpu.Set("bf16AmxHardware", cpu::bf16_amx_hardware());
  cpu.Set("bf16Kernel", cpu::bf16_kernel_current_name());
  out.Set("cpu", cpu);

  // The CUDA backend, where this build has one, reports itself (native/cuda/backend.cc).
  Napi::Object cuda = Napi::Object::New(env);
  const Backend* cuda_backend = find_backend(DeviceType::Cuda);
  if (cuda_backend != nullptr && cuda_backend->describe != nullptr) {
    JsInfo sink(env, cuda);
    cuda_backend->describe(sink);
  } else {
    cuda.Set("compiled", false);
    cuda.Set("available", false);
    cuda.Set("reason", "built without CUDA (nvcc was not found at build time, or ALEXNET_CUDA=0)");
  }
  out.Set("cuda", cuda);
  return out;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  double n = number_arg(info, 0, "setNumThreads", "threads");
  if (n < 1 || n > 64 || n != static_cast<int>(n))
    fail(code::kArgument, "setNumThreads: threads must be an integer in [1, 64] but got ", n);
  device_synchronize(Device{});  // do not resize the pool under a running kernel
  set_num_threads(static_cast<int>(n));
#if defined(ALEXNET_WITH_CBLAS) && defined(ALEXNET_OPENBLAS)
  openblas_set_num_threads(static_cast<int>(n));
#endif
  return info.Env().Undefined();
}

// setGemmBackend('blas' | 'portable'): takes effect for work enqueued afterwards.
Napi::Value SetGemmBackend(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    fail(code::kArgument, "setGemmBackend: expected 'blas' or 'portable'");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::GemmBackend b;
  if (name == "blas") b = cpu::GemmBackend::Blas;
  else if (name == "portable") b = cpu::GemmBackend::Portable;
  else fail(code::kArgument, "setGemmBackend: expected 'blas' or 'portable' but got ", quoted(name));
  if (b == cpu::GemmBackend::Blas && !cpu::blas_compiled())
    fail(code::kArgument, "setGemmBackend: this build has no BLAS; only 'portable' is available");
  // The switch is a global read by tasks: drain the queue so it applies in program order.
  device_synchronize(Device{});
  cpu::set_gemm_backend(b);
  return info.Env().Undefined();
}

// setBf16Kernel('auto' | 'amx_bf16' | 'avx512_bf16' | 'portable'): the CPU's bfloat16
// conversions and products for work enqueued afterwards. 'auto' takes the best the CPU has
// (AMX for the packed GEMM's products, AVX-512 BF16 for the rest); 'avx512_bf16' leaves AMX
// out; 'portable' forces the integer rounding and the float32 GEMM (so tests cover every path).
Napi::Value SetBf16Kernel(const Napi::CallbackInfo& info) {
  const char* expected = "expected 'auto', 'amx_bf16', 'avx512_bf16' or 'portable'";
  if (info.Length() < 1 || !info[0].IsString()) fail(code::kArgument, "setBf16Kernel: ", expected);
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::Bf16Kernel k;
  bool amx = false;
  const bool automatic = name == "auto";
  if (automatic) {
    k = cpu::bf16_hardware() ? cpu::Bf16Kernel::Avx512Bf16 : cpu::Bf16Kernel::Portable;
    amx = cpu::bf16_amx_hardware();
  } else if (name == "amx_bf16") {
    k = cpu::Bf16Kernel::Avx512Bf16;
    amx = true;
  } else if (name == "avx512_bf16") {
    k = cpu::Bf16Kernel::Avx512Bf16;
  } else if (name == "portable") {
    k = cpu::Bf16Kernel::Portable;
  } else {
    fail(code::kArgument, "setBf16Kernel: ", expected, " but got ", quoted(name));
  }
  device_synchronize(Device{});  // a global read by tasks: applies in program order
  // a kernel the CPU lacks (or avx512_bf16 / amx_bf16 under a cap): ERR_ARGUMENT, nothing changed
  cpu::set_bf16_kernel(k, !automatic, amx);
  return info.Env().Undefined();
}

// setCpuIsa('auto' | 'avx2' | 'avx512'): the most our CPU kernels may use, for work enqueued
// afterwards (isa.h): 'avx2' runs every kernel that dispatches on the CPU's features in its
// AVX2 (or baseline) build, bfloat16 on the portable path; 'auto' and 'avx512' lift the cap.
// OpenBLAS is not covered (OPENBLAS_CORETYPE, read when it loads).
Napi::Value SetCpuIsa(const Napi::CallbackInfo& info) {
  const char* expected = "expected 'auto', 'avx2' or 'avx512'";
  if (info.Length() < 1 || !info[0].IsString()) fail(code::kArgument, "setCpuIsa: ", expected);
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::IsaCap cap;
  // (a name with a NUL inside, 'avx2\0junk', is not 'avx2': parse_isa_cap reads a C string)
  if (name.find('\0') != std::string::npos || !cpu::parse_isa_cap(name.c_str(), &cap))
    fail(code::kArgument, "setCpuIsa: ", expected, " but got ", quoted(name));
  device_synchronize(Device{});  // a global read by tasks: applies in program order
  cpu::set_isa_cap(cap);
  return info.Env().Undefined();
}

// cpuKernelsUsed(reset = false) -> string[]: the builds of our CPU kernels that ran since the
// last reset (isa.h's KernelUse names, e.g. 'conv.winograd.own.avx2'); waits for queued CPU
// work first; `reset` clears the record afterwards.
Napi::Value CpuKernelsUsed(const Napi::CallbackInfo& info) {
  const bool reset = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  device_synchronize(Device{});
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t n = 0;
  for (int k = 0; k < static_cast<int>(cpu::KernelUse::kCount); ++k)
    if (cpu::g_kernel_used[k].load()) out.Set(n++, cpu::kernel_use_name(static_cast<cpu::KernelUse>(k)));
  if (reset) cpu::reset_kernel_use();
  return out;
}

// setConvAlgorithm('auto' | 'direct' | 'direct-avx2' | 'im2col' | 'winograd' | 'winograd-gemm'): the CPU
// convolution path for work enqueued afterwards. 'auto' and 'direct' use the direct kernel
// wherever the CPU and the shape allow it, with the CPU's best instruction set (so 'direct' on a
// CPU without AVX2 still runs, through im2col), and 'auto' takes Winograd where its measured
// rule says so (conv_winograd.cc); 'direct-avx2' limits the kernel to its AVX2 build; 'im2col'
// forces im2col + GEMM everywhere; 'winograd' forces Winograd (stride-1 3x3 and 5x5 kernels,
// forward and input gradient) wherever it applies and elsewhere does what 'auto' does;
// 'winograd-gemm' is 'winograd' with its tile-position products always through sgemm (at a small
// batch 'winograd' has its own kernel for them). Tests use it to check every path against the
// same reference.
Napi::Value SetConvAlgorithm(const Napi::CallbackInfo& info) {
  const char* op = "setConvAlgorithm";
  if (info.Length() < 1 || !info[0].IsString())
    fail(code::kArgument, op, ": expected 'auto', 'direct', 'direct-avx2', 'im2col', 'winograd' or 'winograd-gemm'");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::ConvAlgo a;
  if (name == "auto") a = cpu::ConvAlgo::Auto;
  else if (name == "direct") a = cpu::ConvAlgo::Direct;
  else if (name == "direct-avx2") a = cpu::ConvAlgo::DirectAvx2;
  else if (name == "im2col") a = cpu::ConvAlgo::Im2col;
  else if (name == "winograd") a = cpu::ConvAlgo::Winograd;
  else if (name == "winograd-gemm") a = cpu::ConvAlgo::WinogradGemm;
  else fail(code::kArgument, op, ": expected 'auto', 'direct', 'direct-avx2', 'im2col', 'winograd' or 'winograd-gemm' but got ", quoted(name));
  device_synchronize(Device{});  // a global read by tasks: applies in program order
  cpu::set_conv_algo(a);
  return info.Env().Undefined();
}

// setWeightCache(on): whether CPU kernels keep the forms they derive from a weight (the direct
// kernel's packed blocks, Winograd's filter transforms) with the weight's storage between calls,
// until it is next written (core/tensor.h, DerivedCache). On by default; off derives them again
// on every call, as before the cache, for comparisons. Entries already made stay until their
// storage is freed (but are not used while off).
Napi::Value SetWeightCache(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) fail(code::kArgument, "setWeightCache: expected a boolean");
  device_synchronize(Device{});  // a global read by tasks: applies in program order
  set_derived_cache_enabled(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

// weightCacheBytes(): the bytes all cached derived weights hold now (tests: the cache is used,
// and freed with its tensors).
Napi::Value WeightCacheBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(derived_cache_bytes()));
}

// setTf32(on): TF32 tensor-op math for FP32 convolutions and matrix products on CUDA (default
// on); off gives strict FP32. Affects work enqueued afterwards; a no-op without CUDA.
Napi::Value SetTf32(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) fail(code::kArgument, "setTf32: expected a boolean");
  const bool on = info[0].As<Napi::Boolean>().Value();
  for (DeviceType type : {DeviceType::Cpu, DeviceType::Cuda})
    if (const Backend* b = find_backend(type); b != nullptr && b->set_tf32 != nullptr) b->set_tf32(on);
  return info.Env().Undefined();
}

// setDeterministic(on): only deterministic algorithms (default off), so two runs from the same
// seed give bitwise identical results. The CPU backend always is (for a given thread count); on
// CUDA it restricts cuDNN's convolution algorithms (native/cuda/dnn.h). Affects work enqueued
// afterwards. isDeterministic() reads it back.
static std::atomic<bool> g_deterministic_requested{false};

Napi::Value SetDeterministic(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) fail(code::kArgument, "setDeterministic: expected a boolean");
  const bool on = info[0].As<Napi::Boolean>().Value();
  for (DeviceType type : {DeviceType::Cpu, DeviceType::Cuda})
    if (const Backend* b = find_backend(type); b != nullptr && b->set_deterministic != nullptr) b->set_deterministic(on);
  g_deterministic_requested = on;
  return info.Env().Undefined();
}

// setCublasLtEpilogues(on): the CUDA fully connected layers as one cuBLASLt product with the
// bias (and a following ReLU) in its epilogue (default off, or ALEXNET_CUBLASLT=1: opt-in until
// a GPU run has measured it). A no-op without CUDA, and where cuBLASLt is missing.
Napi::Value SetCublasLtEpilogues(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) fail(code::kArgument, "setCublasLtEpilogues: expected a boolean");
  const bool on = info[0].As<Napi::Boolean>().Value();
  for (DeviceType type : {DeviceType::Cpu, DeviceType::Cuda})
    if (const Backend* b = find_backend(type); b != nullptr && b->set_gemm_epilogues != nullptr) b->set_gemm_epilogues(on);
  return info.Env().Undefined();
}

Napi::Value IsDeterministic(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), g_deterministic_requested.load());
}

// cudaDebugFault(device = 'cuda:0', delayMs = 0): TEST AID. Queues a kernel that spins for
// delayMs and then writes to an invalid device address: the device faults
// (cudaErrorIllegalAddress) and its CUDA context stays unusable for the rest of the process.
// Only for a child process that checks how reads report a device fault.
Napi::Value CudaDebugFault(const Napi::CallbackInfo& info) {
  const char* op = "cudaDebugFault";
  std::string name = "cuda:0";
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) fail(code::kDevice, op, ": expected device to be a string such as 'cuda:0'");
    name = info[0].As<Napi::String>().Utf8Value();
  }
  const Device device = Device::parse(name);
  if (device.type != DeviceType::Cuda) fail(code::kDevice, op, ": expected a CUDA device but got '", name, "'");
  const double delay_ms = info.Length() > 1 && !info[1].IsUndefined() ? number_arg(info, 1, op, "delayMs") : 0.0;
  if (delay_ms < 0 || delay_ms > 60000) fail(code::kArgument, op, ": delayMs must be in [0, 60000] but got ", delay_ms);
  const Backend* b = find_backend(device.type);
  if (b == nullptr || b->debug_fault == nullptr) fail(code::kCudaUnavailable, op, ": this build has no CUDA support");
  b->debug_fault(device.index, delay_ms);
  return info.Env().Undefined();
}

// debugStall(device = 'cpu', delayMs): TEST AID. Queues work that keeps the device's queue busy
// for delayMs (CPU: the worker sleeps; CUDA: a kernel spins) and returns at once: what is queued
// after it waits, so a test can make the device lag behind the host (test/step-counters.test.ts
// drives the allocator's cache to its high-water mark this way).
Napi::Value DebugStall(const Napi::CallbackInfo& info) {
  const char* op = "debugStall";
  std::string name = "cpu";
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) fail(code::kDevice, op, ": expected device to be a string such as 'cpu' or 'cuda:0'");
    name = info[0].As<Napi::String>().Utf8Value();
  }
  const Device device = Device::parse(name);
  const double delay_ms = info.Length() > 1 && !info[1].IsUndefined() ? number_arg(info, 1, op, "delayMs") : 0.0;
  if (!(delay_ms >= 0) || delay_ms > 60000) fail(code::kArgument, op, ": delayMs must be in [0, 60000] but got ", delay_ms);
  if (device.type == DeviceType::Cpu) {
    const auto d = std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1000));
    enqueue(device, [d] { std::this_thread::sleep_for(d); });
    return info.Env().Undefined();
  }
  const Backend* b = find_backend(device.type);
  if (b == nullptr || b->debug_stall == nullptr) fail(code::kCudaUnavailable, op, ": this build has no CUDA support");
  b->debug_stall(device.index, delay_ms);
  return info.Env().Undefined();
}

// CUDA graphs (native/cuda/runtime.h, issue 14): the Trainer's cudaGraph option.
//   cudaGraphBegin(device): starts capturing what this thread queues on the device's stream
//   cudaGraphEnd(device) -> id: ends the capture and instantiates it; throws ERR_CUDA saying why
//     the capture failed (the capture is over either way)
//   cudaGraphLaunch(device, id): queues one replay;  cudaGraphDestroy(device, id): frees it
// A device without graphs (the CPU, a build without CUDA) is ERR_DEVICE / ERR_CUDA_UNAVAILABLE.
namespace {

const Backend& graph_backend(const Napi::CallbackInfo& info, const char* op, Device* device) {
  if (info.Length() < 1 || !info[0].IsString()) fail(code::kDevice, op, ": expected device to be a string such as 'cuda:0'");
  *device = Device::parse(info[0].As<Napi::String>().Utf8Value());
  if (device->type == DeviceType::Cpu) fail(code::kDevice, op, ": CUDA graphs need a CUDA device, not 'cpu'");
  const Backend* b = find_backend(device->type);
  if (b == nullptr || b->graph_begin == nullptr) fail(code::kCudaUnavailable, op, ": this build has no CUDA support");
  return *b;
}

int64_t graph_id_arg(const Napi::CallbackInfo& info, const char* op) {
  const double id = number_arg(info, 1, op, "id");
  if (!(id >= 1) || id != static_cast<double>(static_cast<int64_t>(id))) fail(code::kArgument, op, ": expected a graph id, got ", id);
  return static_cast<int64_t>(id);
}

}  // namespace

Napi::Value CudaGraphBegin(const Napi::CallbackInfo& info) {
  Device d;
  graph_backend(info, "cudaGraphBegin", &d).graph_begin(d.index);
  return info.Env().Undefined();
}

Napi::Value CudaGraphEnd(const Napi::CallbackInfo& info) {
  Device d;
  const int64_t id = graph_backend(info, "cudaGraphEnd", &d).graph_end(d.index);
  return Napi::Number::New(info.Env(), static_cast<double>(id));
}

Napi::Value CudaGraphLaunch(const Napi::CallbackInfo& info) {
  Device d;
  const Backend& b = graph_backend(info, "cudaGraphLaunch", &d);
  b.graph_launch(d.index, graph_id_arg(info, "cudaGraphLaunch"));
  return info.Env().Undefined();
}

Napi::Value CudaGraphDestroy(const Napi::CallbackInfo& info) {
  Device d;
  const Backend& b = graph_backend(info, "cudaGraphDestroy", &d);
  b.graph_destroy(d.index, graph_id_arg(info, "cudaGraphDestroy"));
  return info.Env().Undefined();
}

}  // namespace alexnet::binding
