// Files, folders and dlopen: the small helpers every run-time library search is built from
// (cuDNN and cuBLAS in native/cuda/dynload/, Open MPI in native/dist/). Linux only (dlopen).
#pragma once

#if !defined(_WIN32)

#include <dlfcn.h>

#include <string>
#include <vector>

namespace alexnet::dynlib {

// The environment variable's value, or "" when unset.
std::string env(const char* name);
bool is_dir(const std::string& p);
bool exists(const std::string& p);
// dir + "/" + name (name alone when dir is empty).
std::string join(const std::string& dir, const std::string& name);
// The folder part of a path ("." when there is none).
std::string dir_of(const std::string& path);
// dlerror()'s text, or a placeholder when it has none.
std::string dl_error();
// The folders matching a glob pattern, highest version first (python3.13 before python3.9).
std::vector<std::string> glob_dirs(const std::string& pattern);
// The file a resolved symbol lives in (dladdr), else `fallback`.
std::string path_of(void* sym, const std::string& fallback);
// realpath(p), or p itself when it cannot be resolved.
std::string real(const std::string& p);

// dlsym as a typed function pointer (nullptr when absent; dlerror() is cleared first).
template <typename Fn>
Fn symbol(void* handle, const char* name) {
  dlerror();
  void* p = dlsym(handle, name);
  return reinterpret_cast<Fn>(p);
}

}  // namespace alexnet::dynlib

#endif  // !_WIN32
