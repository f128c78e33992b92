// Run-time binding to NCCL 2 (libnccl.so.2), loaded with dlopen like cuDNN (docs/architecture.md,
// decision 1), so that the addon builds without NCCL's header and loads on machines without it.
// Loading never crashes and never throws: what is missing, and every place looked, ends up in
// the status's `reason`. Loading opens the library, asks ncclGetVersion and resolves every
// function of nccl_api.h: it needs no GPU and creates no communicator.
//
// Search order (the cuDNN search's places, native/cuda/dynload/search.h; facts in
// docs/nccl-abi.md, section N0):
//   1. ALEXNET_NCCL_PATH (a file, or a folder holding libnccl.so.2). When set, it is the only
//      place tried: an explicit choice that does not work is reported, not replaced.
//   2. the dynamic loader's own search: dlopen("libnccl.so.2") (LD_LIBRARY_PATH,
//      /etc/ld.so.cache — NVIDIA's libnccl2 package is found here —, /lib, /usr/lib).
//   3. $CUDA_HOME, $CUDA_PATH (lib64, lib), /usr/local/cuda (lib64, lib).
//   4. the pip wheels' nvidia/nccl/lib (nvidia-nccl-cu12 / -cu13) or nvidia/cu13/lib under the
//      Python site-packages folders cuDNN's search uses ($ALEXNET_PYTHON_SITE, $VIRTUAL_ENV,
//      $CONDA_PREFIX, ~/.local, ~/.pyenv, /usr/local/lib, /usr/lib, /opt/conda). No Python is run.
// A file is taken when it loads (RTLD_NOW | RTLD_LOCAL), ncclGetVersion says NCCL 2.10 or later
// (ncclAvg is 2.10's) and below 3, and every function of ALEXNET_NCCL_FUNCTIONS resolves.
#pragma once

#include <string>

#include "../cuda/dynload/loader.h"  // LibraryStatus
#include "nccl_api.h"

namespace alexnet::dist {

struct NcclApi {
#define ALEXNET_NCCL_MEMBER(name) nccl::PFN_##name name = nullptr;
  ALEXNET_NCCL_FUNCTIONS(ALEXNET_NCCL_MEMBER)
#undef ALEXNET_NCCL_MEMBER
};

struct NcclLibrary {
  // found, path, version (ncclGetVersion's code: 23007), version_string ("2.30.7"), searched,
  // reason, chosen, root: as for cuDNN (native/cuda/dynload/loader.h).
  cuda::LibraryStatus status;
  NcclApi api;  // all null unless status.found
};

// Loads the library on the first call (thread-safe); later calls return the same result.
// Never throws.
const NcclLibrary& nccl_library();

// The table, or ERR_DIST naming what is missing and where it looked (`op` leads the message).
const NcclApi& nccl_table(const char* op);

// "2.30.7" from 23007 (2.9 and later) or "2.8.4" from 2804 (2.8 and earlier; section N0).
std::string nccl_version_string(int code);

// "ncclAllReduce failed: <ncclGetErrorString> (ncclSystemError, 2)" as an ERR_DIST error.
[[noreturn]] void throw_nccl_error(int rc, const char* call);

}  // namespace alexnet::dist

// NCCL_CHECK(ncclAllReduce, args...): ERR_DIST naming the function and NCCL's own text.
#define NCCL_CHECK(fn, ...)                                                           \
  do {                                                                                \
    const int alexnet_nccl_rc = ::alexnet::dist::nccl_table(#fn).fn(__VA_ARGS__);     \
    if (alexnet_nccl_rc != ::alexnet::dist::nccl::ncclSuccess)                        \
      ::alexnet::dist::throw_nccl_error(alexnet_nccl_rc, #fn);                        \
  } while (0)
