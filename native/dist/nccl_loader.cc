// The NCCL loader: the search described in nccl_loader.h, built from the cuDNN search's pieces
// (native/cuda/dynload/search.h) and core/dynlib.h.
#include "nccl_loader.h"

#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "../core/error.h"

#if !defined(_WIN32)
#include <dlfcn.h>

#include "../cuda/dynload/search.h"
#endif

namespace alexnet::dist {

namespace {

constexpr const char* kSoname = "libnccl.so.2";
// NCCL 2.10 is the first with ncclAvg; 3.x would be another ABI.
constexpr int kMinVersion = 21000;
constexpr int kMaxVersion = 30000;

#if !defined(_WIN32)

using namespace cuda::dynload;  // NOLINT: Search, Place, join, exists, ... (search.h)

constexpr std::array<const char*, 2> kWheelDirs = {"nvidia/nccl/lib", "nvidia/cu13/lib"};

// Opens `file` (a path, or the soname when by_soname), checks the version, resolves the table.
// On success fills lib; on failure notes why in `s` and closes what it opened.
bool try_nccl(NcclLibrary& lib, Search& s, const std::string& file, const std::string& place, bool by_soname) {
  dlerror();
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const std::string err = dl_error();
    if (by_soname && is_not_found_error(err, file)) s.not_there(place, "not found");
    else s.rejected(place, "cannot load " + file + ": " + err);
    return false;
  }
  NcclApi api;
  std::vector<std::string> missing;
#define ALEXNET_RESOLVE(name)                                  \
  api.name = symbol<nccl::PFN_##name>(h, #name);               \
  if (!api.name) missing.push_back(#name);
  ALEXNET_NCCL_FUNCTIONS(ALEXNET_RESOLVE)
#undef ALEXNET_RESOLVE
  const std::string where = path_of(reinterpret_cast<void*>(api.ncclGetVersion), file);
  lib.status.path = where;
  std::string why;
  if (!api.ncclGetVersion) {
    why = where + " is not NCCL: it has no symbol ncclGetVersion";
  } else {
    int v = 0;
    const nccl::ncclResult_t rc = api.ncclGetVersion(&v);
    lib.status.version = v;
    lib.status.version_string = nccl_version_string(v);
    if (rc != nccl::ncclSuccess) why = where + ": ncclGetVersion failed (" + std::to_string(rc) + ")";
    else if (v < kMinVersion || v >= kMaxVersion)
      why = "found NCCL " + lib.status.version_string + " at " + where + " (ncclGetVersion() = " + std::to_string(v) +
            "); NCCL 2.10 or later (and below 3) is required";
    else if (!missing.empty())
      why = "NCCL " + lib.status.version_string + " at " + where + " " + lacks_symbols(missing);
  }
  if (!why.empty()) {
    s.rejected(place, why);
    dlclose(h);
    return false;
  }
  lib.status.searched.push_back(place + ": loaded " + where + " (NCCL " + lib.status.version_string + ")");
  lib.status.found = true;
  lib.api = api;
  return true;  // h stays open for the life of the process
}

// A folder (or file) place: `dir`/libnccl.so.2 when it exists.
bool try_folder(NcclLibrary& lib, Search& s, const std::string& dir, const std::string& place) {
  const std::string f = join(dir, kSoname);
  if (!exists(f)) {
    s.not_there(place, std::string("no ") + kSoname);
    return false;
  }
  return try_nccl(lib, s, f, place, false);
}

void search(NcclLibrary& lib) {
  Search s(lib.status);
  const std::string what = std::string("NCCL 2 (") + kSoname + ")";
  const std::string over = env("ALEXNET_NCCL_PATH");
  if (!over.empty()) {
    const std::string place = "ALEXNET_NCCL_PATH=" + over;
    if (is_dir(over)) {
      if (!exists(join(over, kSoname))) s.not_there(place + " (no " + kSoname + " in that folder)", "absent");
      else try_folder(lib, s, over, place);
    } else if (exists(over)) {
      try_nccl(lib, s, over, place, false);
    } else {
      s.not_there(place + " (no such file or folder)", "absent");
    }
    s.override_outcome(lib.status.found, what, "ALEXNET_NCCL_PATH");
    return;
  }
  const std::string first = "the first usable NCCL 2 in the search order: ";
  if (try_nccl(lib, s, kSoname, kLoaderPath, true)) {
    lib.status.chosen = first + kLoaderPath;
    return;
  }
  const auto toolkit = search_toolkits(s, [&](const Place& p) { return try_folder(lib, s, p.dir, p.label); });
  if (toolkit) {
    lib.status.chosen = first + *toolkit;
    return;
  }
  const auto site = search_python_sites(s, kWheelDirs, [&](const std::string& d) {
    if (!exists(join(d, kSoname))) {
      s.st.searched.push_back(d + ": no " + std::string(kSoname));
      return false;
    }
    return try_nccl(lib, s, join(d, kSoname), d, false);
  });
  if (site) {
    lib.status.chosen = first + "Python site-packages " + *site;
    return;
  }
  lib.status.reason = s.reason(
      what, "Install NCCL (pip install nvidia-nccl-cu12 or nvidia-nccl-cu13, or NVIDIA's libnccl2 package) "
            "or set ALEXNET_NCCL_PATH to libnccl.so.2 or its folder.");
}

NcclLibrary load() {
  NcclLibrary lib;
  try {
    search(lib);
    if (lib.status.found) lib.status.root = install_root(lib.status.path);
  } catch (const std::exception& e) {  // e.g. bad_alloc: report, never propagate
    lib.status.found = false;
    lib.status.reason = std::string("loading NCCL failed: ") + e.what();
  }
  if (!lib.status.found) lib.api = NcclApi{};
  return lib;
}

#else  // _WIN32

NcclLibrary load() {
  NcclLibrary lib;
  lib.status.reason = "NCCL is loaded at run time on Linux only";
  return lib;
}

#endif

}  // namespace

std::string nccl_version_string(int v) {
  int major, minor, patch;
  if (v >= 10000) {
    major = v / 10000;
    minor = (v % 10000) / 100;
  } else {
    major = v / 1000;
    minor = (v % 1000) / 100;
  }
  patch = v % 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

const NcclLibrary& nccl_library() {
  static std::once_flag once;
  static NcclLibrary* lib = nullptr;  // leaked on purpose: used until the process ends
  std::call_once(once, [] { lib = new NcclLibrary(load()); });
  return *lib;
}

const NcclApi& nccl_table(const char* op) {
  const NcclLibrary& lib = nccl_library();
  if (!lib.status.found)
    fail(code::kDist, op, ": collectives on CUDA tensors go through NCCL, which cannot be loaded: ", lib.status.reason);
  return lib.api;
}

void throw_nccl_error(int rc, const char* call) {
  const char* name = "unknown ncclResult_t";
  switch (rc) {
#define ALEXNET_NCCL_NAME(n, value) \
  case value: name = #n; break;
    ALEXNET_NCCL_RESULTS(ALEXNET_NCCL_NAME)
#undef ALEXNET_NCCL_NAME
    default: break;
  }
  std::string text;
  const NcclLibrary& lib = nccl_library();
  if (lib.status.found && lib.api.ncclGetErrorString) {
    const char* t = lib.api.ncclGetErrorString(static_cast<nccl::ncclResult_t>(rc));
    if (t) text = t;
  }
  fail(code::kDist, call, " failed: ", text.empty() ? std::string("unknown NCCL error") : text, " (", name, ", ", rc,
       ")");
}

}  // namespace alexnet::dist
