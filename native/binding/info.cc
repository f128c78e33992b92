// What this build contains and what it found at run time (`alexnet info`).
#include "../core/parallel.h"
#include "../cpu/conv_direct.h"
#include "../cpu/gemm.h"
#include "common.h"
#include "register.h"

#ifdef ALEXNET_WITH_CUDA
#include "../cuda/dynload/loader.h"
#include "../cuda/dnn.h"
#include "../cuda/probe.h"
#endif
#if defined(ALEXNET_WITH_CBLAS) && defined(ALEXNET_OPENBLAS)
#include <cblas.h>
#endif

#ifndef ALEXNET_BUILD_SYSTEM
#define ALEXNET_BUILD_SYSTEM "unknown"
#endif

namespace alexnet::binding {

namespace {

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
  cpu.Set("convAlgorithm", algo == cpu::ConvAlgo::Auto         ? "auto"
                           : algo == cpu::ConvAlgo::Direct     ? "direct"
                           : algo == cpu::ConvAlgo::DirectAvx2 ? "direct-avx2"
                                                               : "im2col");
  const cpu::ConvIsa isa = cpu::conv_direct_cpu_isa();
  cpu.Set("directConv", isa != cpu::ConvIsa::None);
  cpu.Set("directConvIsa", isa == cpu::ConvIsa::Avx512 ? "avx512" : isa == cpu::ConvIsa::Avx2 ? "avx2" : "none");
#if defined(ALEXNET_WITH_CBLAS) && defined(ALEXNET_OPENBLAS)
  cpu.Set("blasThreads", openblas_get_num_threads());
#endif
  out.Set("cpu", cpu);

  Napi::Object cuda = Napi::Object::New(env);
#ifdef ALEXNET_WITH_CUDA
  static const alexnet::cuda::ProbeResult probe = alexnet::cuda::probe();  // once per process
  cuda.Set("compiled", true);
  cuda.Set("deviceFound", probe.available);
  cuda.Set("deviceCount", probe.device_count);
  cuda.Set("runtimeVersion", probe.runtime_version);
  cuda.Set("driverVersion", probe.driver_version);
  cuda.Set("architectures", probe.architectures);
  if (!probe.device_name.empty()) cuda.Set("deviceName", probe.device_name);
  // cuDNN / cuBLAS, loaded here on the first info() call (not at addon load).
  const alexnet::cuda::Libraries& libs = alexnet::cuda::libraries();
  auto library = [&](const alexnet::cuda::LibraryStatus& lib) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("found", lib.found);
    o.Set("path", lib.path);  // the rejected file when found is false (see reason)
    o.Set("version", lib.version_string);
    o.Set("why", lib.chosen);  // why this file was taken ("" when not found)
    o.Set("root", lib.root);   // its installation (site-packages, toolkit root, or folder)
    return o;
  };
  Napi::Object libraries = Napi::Object::New(env);
  libraries.Set("cudnn", library(libs.cudnn));
  libraries.Set("cublas", library(libs.cublas));
  cuda.Set("libraries", libraries);
  // Available = a device ran our probe kernel and cuDNN 9 and cuBLAS loaded.
  const bool available = probe.available && libs.cudnn_ok && libs.cublas_ok;
  cuda.Set("available", available);
  cuda.Set("tf32", alexnet::cuda::tf32());
  // Which allocator device 0 uses: the stream-ordered memory pool, or cudaMalloc with our own
  // cache (devices without pools, or ALEXNET_CUDA_MEMPOOL=0).
  if (probe.available) cuda.Set("allocator", alexnet::cuda::allocator_name(0));
  // cuDNN descriptors made so far in this process: the per-shape caches make none for a shape
  // already seen (tests compare this before and after a repeated call).
  cuda.Set("descriptorsCreated", static_cast<double>(alexnet::cuda::descriptors_created()));
  std::string reason;
  if (!probe.available) reason = probe.reason;
  if (!libs.reason.empty()) reason += (reason.empty() ? "" : "\n") + libs.reason;
  cuda.Set("reason", reason);
#else
  cuda.Set("compiled", false);
  cuda.Set("available", false);
  cuda.Set("reason", "built without CUDA (nvcc was not found at build time, or ALEXNET_CUDA=0)");
#endif
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
  else fail(code::kArgument, "setGemmBackend: expected 'blas' or 'portable' but got '", name, "'");
  if (b == cpu::GemmBackend::Blas && !cpu::blas_compiled())
    fail(code::kArgument, "setGemmBackend: this build has no BLAS; only 'portable' is available");
  // The switch is a global read by tasks: drain the queue so it applies in program order.
  device_synchronize(Device{});
  cpu::set_gemm_backend(b);
  return info.Env().Undefined();
}

// setConvAlgorithm('auto' | 'direct' | 'direct-avx2' | 'im2col'): the CPU convolution path for
// work enqueued afterwards. 'auto' and 'direct' use the direct kernel wherever the CPU and the
// shape allow it, with the CPU's best instruction set (so 'direct' on a CPU without AVX2 still
// runs, through im2col); 'direct-avx2' limits the kernel to its AVX2 build; 'im2col' forces
// im2col + GEMM everywhere. Tests use it to check every path against the same reference.
Napi::Value SetConvAlgorithm(const Napi::CallbackInfo& info) {
  const char* op = "setConvAlgorithm";
  if (info.Length() < 1 || !info[0].IsString())
    fail(code::kArgument, op, ": expected 'auto', 'direct', 'direct-avx2' or 'im2col'");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::ConvAlgo a;
  if (name == "auto") a = cpu::ConvAlgo::Auto;
  else if (name == "direct") a = cpu::ConvAlgo::Direct;
  else if (name == "direct-avx2") a = cpu::ConvAlgo::DirectAvx2;
  else if (name == "im2col") a = cpu::ConvAlgo::Im2col;
  else fail(code::kArgument, op, ": expected 'auto', 'direct', 'direct-avx2' or 'im2col' but got '", name, "'");
  device_synchronize(Device{});  // a global read by tasks: applies in program order
  cpu::set_conv_algo(a);
  return info.Env().Undefined();
}

// setTf32(on): TF32 tensor-op math for FP32 convolutions and matrix products on CUDA (default
// on); off gives strict FP32. Affects work enqueued afterwards; a no-op without CUDA.
Napi::Value SetTf32(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) fail(code::kArgument, "setTf32: expected a boolean");
#ifdef ALEXNET_WITH_CUDA
  alexnet::cuda::set_tf32(info[0].As<Napi::Boolean>().Value());
#endif
  return info.Env().Undefined();
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
#ifdef ALEXNET_WITH_CUDA
  alexnet::cuda::debug_fault(device.index, delay_ms);
#else
  fail(code::kCudaUnavailable, op, ": this build has no CUDA support");
#endif
  return info.Env().Undefined();
}

}  // namespace

void register_info(Napi::Env env, Napi::Object exports) {
  export_function(env, exports, "info", Info);
  export_function(env, exports, "setNumThreads", SetNumThreads);
  export_function(env, exports, "setGemmBackend", SetGemmBackend);
  export_function(env, exports, "setTf32", SetTf32);
  export_function(env, exports, "setConvAlgorithm", SetConvAlgorithm);
  export_function(env, exports, "cudaDebugFault", CudaDebugFault);
}

}  // namespace alexnet::binding
