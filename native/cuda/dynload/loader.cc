// dlopen/dlsym binding to cuDNN 9 and cuBLAS 12/13; see loader.h for the search order.
// This file: libraries() (locate cuDNN, load cuBLAS, load cuDNN, once) and the table getters.
// The search is in search.cc, the loaders in cudnn_loader.cc / cublas_loader.cc, status names
// and error helpers in status_names.cc.
#include "loader.h"

#include <exception>
#include <mutex>
#include <string>

#include "../../core/error.h"
#include "search.h"

namespace alexnet::cuda {

#if defined(_WIN32)

const Libraries& libraries() {
  static Libraries libs = [] {
    Libraries l;
    l.cudnn.reason = "cuDNN: run-time loading is implemented for Linux only";
    l.cublas.reason = "cuBLAS: run-time loading is implemented for Linux only";
    l.reason = l.cudnn.reason + "; " + l.cublas.reason;
    return l;
  }();
  return libs;
}

#else

const Libraries& libraries() {
  using namespace dynload;
  static Libraries libs;
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      // cuDNN's file first, only located; then cuBLAS, preferring cuDNN's installation, loaded
      // before cuDNN because its libcublasLt also serves cuDNN 9 (docs/cuda-abi.md,
      // section A0); then cuDNN.
      const Located dn = locate_cudnn();
      load_cublas(libs, dn);
      load_cudnn(libs);
      for (LibraryStatus* st : {&libs.cudnn, &libs.cublas})
        if (st->found) st->root = install_root(st->path);
      if (libs.cudnn_ok && libs.cublas_ok && !dn.file.empty() && real(libs.cudnn.path) != real(dn.file))
        libs.cublas.chosen += "; but cuDNN was then loaded from " + libs.cudnn.path + ", not " + dn.file +
                              " (that one was not usable, or the loader resolved another copy)";
      for (LibraryStatus* st : {&libs.cudnn, &libs.cublas})
        if (st->found) st->notes.push_back("taken: " + st->chosen + "; installation " + st->root);
    } catch (const std::exception& e) {  // e.g. bad_alloc: report, never propagate
      if (libs.reason.empty()) libs.reason = std::string("loading failed: ") + e.what();
    }
    if (!libs.cudnn_ok && !libs.cudnn.reason.empty()) libs.reason += libs.cudnn.reason;
    if (!libs.cublas_ok && !libs.cublas.reason.empty())
      libs.reason += (libs.reason.empty() ? "" : "\n") + libs.cublas.reason;
  });
  return libs;
}

#endif  // !_WIN32

const CudnnApi& cudnn() {
  const Libraries& libs = libraries();
  if (!libs.cudnn_ok) fail(code::kCudaUnavailable, libs.cudnn.reason);
  return libs.cudnn_api;
}

const CublasApi& cublas() {
  const Libraries& libs = libraries();
  if (!libs.cublas_ok) fail(code::kCudaUnavailable, libs.cublas.reason);
  return libs.cublas_api;
}

const CublasLtApi* cublaslt() {
  const Libraries& libs = libraries();
  return libs.cublaslt_ok ? &libs.cublaslt_api : nullptr;
}

}  // namespace alexnet::cuda
