// Run-time binding to cuDNN 9 and cuBLAS 12/13 (docs/architecture.md, decision 1): dlopen +
// dlsym of every symbol the backend calls into a function table, once per process, on first use.
// Plain C++ (no CUDA headers); loading never crashes and never throws: what is missing, and
// every place looked, ends up in Libraries::reason.
//
// Search order, for each library:
//   1. ALEXNET_CUDNN_PATH / ALEXNET_CUBLAS_PATH (a file, or a folder holding it). When set, it is
//      the only place tried: an explicit choice that does not work is reported, not replaced.
//   2. the dynamic loader's own search: dlopen("libcudnn.so.9"), dlopen("libcublas.so.13") then
//      ("libcublas.so.12") (LD_LIBRARY_PATH, /etc/ld.so.cache, /lib, /usr/lib).
//   3. $CUDA_HOME, $CUDA_PATH (lib64, lib), /usr/local/cuda (lib64, lib).
//   4. pip-installed CUDA wheels: nvidia/cudnn/lib, nvidia/cublas/lib, nvidia/cu13/lib under the
//      site-packages folders in $ALEXNET_PYTHON_SITE (':'-separated), $VIRTUAL_ENV, $CONDA_PREFIX,
//      ~/.local, ~/.pyenv/versions/*, /usr/local/lib, /usr/lib, /opt/conda (python3*/
//      site-packages|dist-packages). No Python is run.
// cuBLAS and cuDNN must come from the same installation (a cuDNN built against one cuBLAS next
// to another is a mismatch waiting to happen), so the search is:
//   a. locate cuDNN's file, without loading anything: the first libcudnn.so.9 that exists in
//      the order above (for step 2, in the folders the loader searches: LD_LIBRARY_PATH,
//      /etc/ld.so.conf, the system library folders);
//   b. look for cuBLAS first beside it (the same folder; in a wheel layout the same
//      site-packages' nvidia/cu13/lib and nvidia/cublas/lib; in a toolkit its lib64 and lib),
//      then in the order above; ALEXNET_CUBLAS_PATH, when set, is still the only place tried;
//   c. load cuBLAS, then cuDNN.
// LibraryStatus::chosen says why each file was taken, LibraryStatus::root its installation.
// cuBLAS is loaded first: from a folder outside the loader's path its libcublasLt.so.N (same
// folder) is preloaded RTLD_GLOBAL, which also serves cuDNN 9 (it depends on cuBLASLt). For
// cuDNN from such a folder, the sub-libraries the libcudnn.so.9 shim dlopens by soname
// (libcudnn_graph, _engines_*, _heuristic, _ops, _cnn, _adv .so.9) are preloaded from the same
// folder RTLD_GLOBAL, so the shim's dlopen finds them already loaded.
//
// Error helpers: CUDNN_CHECK(call) / CUBLAS_CHECK(call) throw alexnet::Error(ERR_CUDA, "<fn>
// failed: <STATUS_NAME> (<library text>) at file:line"); allocation failures use
// ERR_OUT_OF_MEMORY (docs/architecture.md, decision 6). The library facts the search relies on
// (sonames, sub-libraries, version numbers) are in docs/cuda-abi.md, sections A0 and B0.
#pragma once

#include <string>
#include <vector>

#include "cublas_api.h"
#include "cudnn_api.h"

namespace alexnet::cuda {

// The function tables (members named as the exported symbols: cudnn().cudnnCreate(&h)).
struct CudnnApi {
#define ALEXNET_DYNLOAD_MEMBER(name) dnn::PFN_##name name = nullptr;
  ALEXNET_CUDNN_FUNCTIONS(ALEXNET_DYNLOAD_MEMBER)
  ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(ALEXNET_DYNLOAD_MEMBER)  // may stay null
#undef ALEXNET_DYNLOAD_MEMBER
};

struct CublasApi {
#define ALEXNET_DYNLOAD_MEMBER(name) blas::PFN_##name name = nullptr;
  ALEXNET_CUBLAS_FUNCTIONS(ALEXNET_DYNLOAD_MEMBER)
  ALEXNET_CUBLAS_OPTIONAL_FUNCTIONS(ALEXNET_DYNLOAD_MEMBER)
#undef ALEXNET_DYNLOAD_MEMBER
};

// cuBLASLt, resolved from the cuBLAS library's handle: all set, or all null (Libraries::cublaslt_ok).
struct CublasLtApi {
#define ALEXNET_DYNLOAD_MEMBER(name) blas::PFN_##name name = nullptr;
  ALEXNET_CUBLASLT_FUNCTIONS(ALEXNET_DYNLOAD_MEMBER)
#undef ALEXNET_DYNLOAD_MEMBER
};

struct LibraryStatus {
  bool found = false;            // loaded, right major version, every required symbol resolved
  std::string path;              // the file in use (found), or the last one rejected
  long long version = 0;         // cudnnGetVersion() / cuBLAS major*10000+minor*100+patch
  std::string version_string;    // "9.6.0" / "12.6.4"
  long long cudart_version = 0;  // cudnnGetCudartVersion() when exported (cuDNN only)
  std::vector<std::string> searched;  // every place considered, in order: "<place>: <outcome>"
  std::vector<std::string> notes;     // non-fatal remarks (sub-libraries preloaded or absent)
  std::string reason;                 // why not found ("" when found)
  std::string chosen;  // why this file was taken (found), e.g. "beside cuDNN, same installation"
  std::string root;    // its installation: the site-packages folder of a pip wheel layout
                       // (…/site-packages for …/site-packages/nvidia/*/lib), the toolkit root
                       // for …/lib64 or …/lib, else the file's folder ("" when not found)
};

struct Libraries {
  bool cudnn_ok = false;
  bool cublas_ok = false;
  LibraryStatus cudnn;
  LibraryStatus cublas;
  std::string reason;  // what is missing and where it looked; "" when both were found
  CudnnApi cudnn_api;  // all null unless cudnn_ok
  CublasApi cublas_api;  // all null unless cublas_ok
  bool cublaslt_ok = false;    // every cuBLASLt function we call resolved (only with cublas_ok)
  std::string cublaslt_note;   // why not: the missing symbols ("" when cublaslt_ok or no cuBLAS)
  CublasLtApi cublaslt_api;    // all null unless cublaslt_ok
};

// Loads both libraries on the first call (thread-safe, std::call_once); later calls return the
// same result. Never throws, never aborts.
const Libraries& libraries();

// The tables, or ERR_CUDA_UNAVAILABLE naming what is missing and where it looked.
const CudnnApi& cudnn();
const CublasApi& cublas();
// The cuBLASLt table, or null where cuBLAS or one of its cuBLASLt functions is missing (the
// callers then take the cublasGemmEx path). Never throws.
const CublasLtApi* cublaslt();

// Status names from our own tables (no library needed): "CUDNN_STATUS_BAD_PARAM". Unknown cuDNN
// sub-codes are named by category: "CUDNN_STATUS_BAD_PARAM (sub-code 2013)".
std::string cudnn_status_name(int status);
std::string cublas_status_name(int status);

// "api.cudnnConvolutionForward(h, ...)" -> "cudnnConvolutionForward"; a plain name is kept.
std::string call_name(const char* call);

[[noreturn]] void throw_cudnn_error(int status, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(int status, const char* call, const char* file, int line);

inline void check_cudnn(dnn::cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status != dnn::CUDNN_STATUS_SUCCESS) throw_cudnn_error(status, call, file, line);
}
inline void check_cublas(blas::cublasStatus_t status, const char* call, const char* file,
                         int line) {
  if (status != blas::CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}

}  // namespace alexnet::cuda

#define CUDNN_CHECK(call) ::alexnet::cuda::check_cudnn((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::alexnet::cuda::check_cublas((call), #call, __FILE__, __LINE__)
