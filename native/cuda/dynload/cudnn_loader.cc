// Loading cuDNN 9 (see loader.h for the search order): the sub-libraries preloaded from the
// file's folder, the version check and every symbol of cudnn_api.h resolved.
#if !defined(_WIN32)

#include <dlfcn.h>

#include <string>
#include <utility>
#include <vector>

#include "search.h"

namespace alexnet::cuda::dynload {

namespace {

// Sub-libraries the cuDNN 9 shim dlopens by soname (docs/cuda-abi.md, section A0), in dependency order.
constexpr const char* kCudnnSublibraries[] = {
    "libcudnn_graph.so.9",     "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9",
    "libcudnn_ops.so.9",       "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9"};

// "9.6.0" from 90600 (9.x scale) or "8.9.1" from 8901 (8.x scale; docs/cuda-abi.md, section A0).
std::string cudnn_version_string(long long v) {
  long long major, minor, patch;
  if (v >= 10000) {
    major = v / 10000;
    minor = (v % 10000) / 100;
    patch = v % 100;
  } else {
    major = v / 1000;
    minor = (v % 1000) / 100;
    patch = v % 100;
  }
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

// The sub-libraries preloaded from a candidate's folder, RTLD_GLOBAL, and what that saw.
struct Preloaded {
  std::vector<void*> handles;
  std::vector<std::string> notes;  // kept in libs.cudnn.notes if the candidate is taken
  // When the candidate is rejected: closed again, in reverse order.
  void unload() {
    for (auto it = handles.rbegin(); it != handles.rend(); ++it) dlclose(*it);
  }
};

// The libcudnn.so.9 shim dlopens its sub-libraries by soname (and may link libcudnn_graph);
// outside the loader's path they would not be found, so they are loaded first, from the same
// folder, RTLD_GLOBAL: the shim's own dlopen then reuses the already loaded sonames. Nothing
// when `folder` is "" (a soname the loader resolves).
Preloaded preload_sublibraries(const std::string& folder) {
  Preloaded out;
  if (folder.empty()) return out;
  std::vector<std::string> absent;
  for (const char* sub : kCudnnSublibraries) {
    const std::string p = join(folder, sub);
    if (!exists(p)) {
      absent.push_back(sub);
      continue;
    }
    dlerror();
    if (void* sh = dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL)) out.handles.push_back(sh);
    else out.notes.push_back("could not preload " + p + ": " + dl_error());
  }
  out.notes.push_back("preloaded " + std::to_string(out.handles.size()) + " cuDNN sub-libraries from " + folder);
  if (!absent.empty()) {
    std::string list;
    for (size_t i = 0; i < absent.size(); ++i) list += (i ? ", " : "") + absent[i];
    out.notes.push_back("not in " + folder + ": " + list + " (cuDNN will look for them on the loader's path)");
  }
  return out;
}

// dlopen(file) RTLD_LOCAL; null after noting why in `s` (a soname the loader does not know is
// "not found", anything else is rejected with dlopen's error).
void* open_cudnn(Search& s, const std::string& file, const std::string& place, bool by_soname) {
  dlerror();
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const std::string err = dl_error();
    if (by_soname && is_not_found_error(err, file)) s.not_there(place, "not found");
    else s.rejected(place, "cannot load " + file + ": " + err);
  }
  return h;
}

// Whether the loaded `h` is cuDNN 9: resolves api.cudnnGetVersion and fills in st's path (the
// file the symbol lives in) and version. Returns why it is rejected, or "" when it is cuDNN 9.
std::string check_cudnn_version(void* h, const std::string& file, LibraryStatus& st, CudnnApi& api) {
  api.cudnnGetVersion = symbol<dnn::PFN_cudnnGetVersion>(h, "cudnnGetVersion");
  const std::string where = path_of(reinterpret_cast<void*>(api.cudnnGetVersion), file);
  st.path = where;
  if (!api.cudnnGetVersion) return where + " is not cuDNN: it has no symbol cudnnGetVersion";
  const long long v = static_cast<long long>(api.cudnnGetVersion());
  st.version = v;
  st.version_string = cudnn_version_string(v);
  if (v < 90000 || v >= 100000)
    return "found cuDNN " + st.version_string + " at " + where + " (cudnnGetVersion() = " + std::to_string(v) +
           "); cuDNN 9 is required";
  return "";
}

// Resolves every symbol of cudnn_api.h into `api` (the optional ones may stay null). Returns
// why the file is rejected (a required symbol is missing), or "".
std::string resolve_cudnn_symbols(void* h, const LibraryStatus& st, CudnnApi& api) {
  std::vector<std::string> missing;
#define ALEXNET_RESOLVE(name)                                   \
  api.name = symbol<dnn::PFN_##name>(h, #name);                 \
  if (!api.name) missing.push_back(#name);
  ALEXNET_CUDNN_FUNCTIONS(ALEXNET_RESOLVE)
#undef ALEXNET_RESOLVE
  if (!missing.empty()) return "cuDNN " + st.version_string + " at " + st.path + " " + lacks_symbols(missing);
#define ALEXNET_RESOLVE_OPTIONAL(name) api.name = symbol<dnn::PFN_##name>(h, #name);
  ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(ALEXNET_RESOLVE_OPTIONAL)
#undef ALEXNET_RESOLVE_OPTIONAL
  return "";
}

// Takes the checked candidate: its table, its notes and how it was found go into `libs`.
void accept_cudnn(Libraries& libs, const CudnnApi& api, const std::string& place, std::vector<std::string>& notes) {
  if (api.cudnnGetCudartVersion)
    libs.cudnn.cudart_version = static_cast<long long>(api.cudnnGetCudartVersion());
  for (std::string& n : notes) libs.cudnn.notes.push_back(std::move(n));
  libs.cudnn.searched.push_back(place + ": loaded " + libs.cudnn.path + " (cuDNN " + libs.cudnn.version_string + ")");
  libs.cudnn.found = true;
  libs.cudnn_ok = true;
  libs.cudnn_api = api;
}

// Tries `file` (a path, or the soname when by_soname) with its sub-libraries from `folder`:
// loaded, cuDNN 9, every symbol. On success fills libs.cudnn / libs.cudnn_api; on rejection
// records why in `s` and closes what it opened.
bool try_cudnn(Libraries& libs, Search& s, const std::string& file, const std::string& folder,
               const std::string& place, bool by_soname) {
  Preloaded preloaded = preload_sublibraries(folder);
  void* h = open_cudnn(s, file, place, by_soname);
  if (!h) {
    preloaded.unload();
    return false;
  }
  CudnnApi api;
  std::string why = check_cudnn_version(h, file, libs.cudnn, api);
  if (why.empty()) why = resolve_cudnn_symbols(h, libs.cudnn, api);
  if (!why.empty()) {
    s.rejected(place, why);
    dlclose(h);
    preloaded.unload();
    return false;
  }
  accept_cudnn(libs, api, place, preloaded.notes);
  return true;  // h stays open for the process lifetime
}

}  // namespace

void load_cudnn(Libraries& libs) {
  Search s(libs.cudnn);
  const std::string what = "cuDNN 9 (" + std::string(kCudnnSoname) + ")";
  const std::string over = env("ALEXNET_CUDNN_PATH");
  if (!over.empty()) {
    const std::string place = "ALEXNET_CUDNN_PATH=" + over;
    if (is_dir(over)) {
      const std::string f = join(over, kCudnnSoname);
      if (exists(f)) try_cudnn(libs, s, f, over, place, false);
      else s.not_there(place + " (no " + kCudnnSoname + " in that folder)", "absent");
    } else if (exists(over)) {
      try_cudnn(libs, s, over, dir_of(over), place, false);
    } else {
      s.not_there(place + " (no such file or folder)", "absent");
    }
    s.override_outcome(libs.cudnn_ok, what, "ALEXNET_CUDNN_PATH");
    return;
  }
  const std::string first = "the first usable cuDNN 9 in the search order: ";
  if (try_cudnn(libs, s, kCudnnSoname, "", kLoaderPath, true)) {
    libs.cudnn.chosen = first + kLoaderPath;
    return;
  }
  const auto toolkit = search_toolkits(s, [&](const Place& p) {
    const std::string f = join(p.dir, kCudnnSoname);
    if (!exists(f)) {
      s.not_there(p.label, "no " + std::string(kCudnnSoname));
      return false;
    }
    return try_cudnn(libs, s, f, p.dir, p.label, false);
  });
  if (toolkit) {
    libs.cudnn.chosen = first + *toolkit;
    return;
  }
  const auto site = search_python_sites(s, kCudnnWheelDirs, [&](const std::string& d) {
    const std::string f = join(d, kCudnnSoname);
    if (!exists(f)) {
      s.st.searched.push_back(d + ": no " + std::string(kCudnnSoname));
      return false;
    }
    return try_cudnn(libs, s, f, d, d, false);
  });
  if (site) {
    libs.cudnn.chosen = first + "Python site-packages " + *site;
    return;
  }
  libs.cudnn.reason = s.reason(
      what,
      "Install cuDNN 9 (pip install nvidia-cudnn-cu12 or nvidia-cudnn-cu13, or NVIDIA's cudnn9 "
      "package) or set ALEXNET_CUDNN_PATH to libcudnn.so.9 or its folder.");
}

}  // namespace alexnet::cuda::dynload

#endif  // !_WIN32
