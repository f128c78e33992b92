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

// Loads `file` (a path, or the soname when by_soname), checks the version and every symbol.
// On success fills libs.cudnn / libs.cudnn_api and preloads the sub-libraries from `folder`.
bool try_cudnn(Libraries& libs, Search& s, const std::string& file, const std::string& folder,
               const std::string& place, bool by_soname) {
  // The libcudnn.so.9 shim dlopens its sub-libraries by soname (and may link libcudnn_graph);
  // outside the loader's path they would not be found, so load them first, from the same
  // folder, RTLD_GLOBAL: the shim's own dlopen then reuses the already loaded sonames. They
  // are closed again if this candidate is rejected.
  std::vector<void*> preloaded;
  std::vector<std::string> notes;
  if (!folder.empty()) {
    std::vector<std::string> absent;
    for (const char* sub : kCudnnSublibraries) {
      const std::string p = join(folder, sub);
      if (!exists(p)) {
        absent.push_back(sub);
        continue;
      }
      dlerror();
      if (void* sh = dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL)) preloaded.push_back(sh);
      else notes.push_back("could not preload " + p + ": " + dl_error());
    }
    notes.push_back("preloaded " + std::to_string(preloaded.size()) + " cuDNN sub-libraries from " + folder);
    if (!absent.empty()) {
      std::string list;
      for (size_t i = 0; i < absent.size(); ++i) list += (i ? ", " : "") + absent[i];
      notes.push_back("not in " + folder + ": " + list + " (cuDNN will look for them on the loader's path)");
    }
  }
  auto unload_preloaded = [&] {
    for (auto it = preloaded.rbegin(); it != preloaded.rend(); ++it) dlclose(*it);
  };

  dlerror();
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const std::string err = dl_error();
    if (by_soname && is_not_found_error(err, file)) s.not_there(place, "not found");
    else s.rejected(place, "cannot load " + file + ": " + err);
    unload_preloaded();
    return false;
  }
  CudnnApi api;
  api.cudnnGetVersion = symbol<dnn::PFN_cudnnGetVersion>(h, "cudnnGetVersion");
  const std::string where = path_of(reinterpret_cast<void*>(api.cudnnGetVersion), file);
  libs.cudnn.path = where;
  if (!api.cudnnGetVersion) {
    s.rejected(place, where + " is not cuDNN: it has no symbol cudnnGetVersion");
    dlclose(h);
    unload_preloaded();
    return false;
  }
  const long long v = static_cast<long long>(api.cudnnGetVersion());
  libs.cudnn.version = v;
  libs.cudnn.version_string = cudnn_version_string(v);
  if (v < 90000 || v >= 100000) {
    s.rejected(place, "found cuDNN " + libs.cudnn.version_string + " at " + where +
                          " (cudnnGetVersion() = " + std::to_string(v) + "); cuDNN 9 is required");
    dlclose(h);
    unload_preloaded();
    return false;
  }
  std::vector<std::string> missing;
#define ALEXNET_RESOLVE(name)                                   \
  api.name = symbol<dnn::PFN_##name>(h, #name);                 \
  if (!api.name) missing.push_back(#name);
  ALEXNET_CUDNN_FUNCTIONS(ALEXNET_RESOLVE)
#undef ALEXNET_RESOLVE
  if (!missing.empty()) {
    s.rejected(place, "cuDNN " + libs.cudnn.version_string + " at " + where + " " + lacks_symbols(missing));
    dlclose(h);
    unload_preloaded();
    return false;
  }
#define ALEXNET_RESOLVE_OPTIONAL(name) api.name = symbol<dnn::PFN_##name>(h, #name);
  ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(ALEXNET_RESOLVE_OPTIONAL)
#undef ALEXNET_RESOLVE_OPTIONAL
  if (api.cudnnGetCudartVersion)
    libs.cudnn.cudart_version = static_cast<long long>(api.cudnnGetCudartVersion());

  for (std::string& n : notes) libs.cudnn.notes.push_back(std::move(n));
  libs.cudnn.searched.push_back(place + ": loaded " + where + " (cuDNN " + libs.cudnn.version_string + ")");
  libs.cudnn.found = true;
  libs.cudnn_ok = true;
  libs.cudnn_api = api;
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
    if (!libs.cudnn_ok)
      libs.cudnn.reason = s.reason(what, "Fix or unset ALEXNET_CUDNN_PATH (it is the only place tried when set).");
    else
      libs.cudnn.chosen = "ALEXNET_CUDNN_PATH (an explicit choice: the only place tried)";
    return;
  }
  const std::string first = "the first usable cuDNN 9 in the search order: ";
  if (try_cudnn(libs, s, kCudnnSoname, "", kLoaderPath, true)) {
    libs.cudnn.chosen = first + kLoaderPath;
    return;
  }
  std::vector<std::string> skipped;
  for (const Place& p : toolkit_places(skipped)) {
    const std::string f = join(p.dir, kCudnnSoname);
    if (!exists(f)) {
      s.not_there(p.label, "no " + std::string(kCudnnSoname));
      continue;
    }
    if (try_cudnn(libs, s, f, p.dir, p.label, false)) {
      libs.cudnn.chosen = first + p.label;
      return;
    }
  }
  s.skipped(skipped);
  const std::vector<std::string> sites = python_sites();
  for (const std::string& site : sites) {
    for (const char* sub : {"nvidia/cudnn/lib", "nvidia/cu13/lib"}) {
      const std::string d = join(site, sub);
      const std::string f = join(d, kCudnnSoname);
      if (!exists(f)) {
        s.st.searched.push_back(d + ": no " + std::string(kCudnnSoname));
        continue;
      }
      if (try_cudnn(libs, s, f, d, d, false)) {
        libs.cudnn.chosen = first + "Python site-packages " + site;
        return;
      }
    }
  }
  s.sites_summary = summarize_sites(sites, "nvidia/cudnn/lib and nvidia/cu13/lib");
  libs.cudnn.reason = s.reason(
      what,
      "Install cuDNN 9 (pip install nvidia-cudnn-cu12 or nvidia-cudnn-cu13, or NVIDIA's cudnn9 "
      "package) or set ALEXNET_CUDNN_PATH to libcudnn.so.9 or its folder.");
}

}  // namespace alexnet::cuda::dynload

#endif  // !_WIN32
