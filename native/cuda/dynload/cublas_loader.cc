// Loading cuBLAS 12 or 13 (see loader.h for the search order): beside cuDNN first (the same
// installation), libcublasLt preloaded from the same folder, the version check and every
// symbol of cublas_api.h resolved.
#if !defined(_WIN32)

#include <dlfcn.h>

#include <set>
#include <string>
#include <vector>

#include "search.h"

namespace alexnet::cuda::dynload {

namespace {

constexpr const char* kCublasMajors[] = {"13", "12"};  // newest first

bool try_cublas(Libraries& libs, Search& s, const std::string& file, const std::string& lt_file,
                const std::string& place, bool by_soname) {
  void* lt = nullptr;
  if (!lt_file.empty()) {
    if (exists(lt_file)) {
      dlerror();
      lt = dlopen(lt_file.c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (!lt) libs.cublas.notes.push_back("could not preload " + lt_file + ": " + dl_error());
    } else {
      libs.cublas.notes.push_back("no " + lt_file + " beside " + file);
    }
  }
  dlerror();
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const std::string err = dl_error();
    if (by_soname && is_not_found_error(err, file)) s.st.searched.push_back(place + ": " + file + " not found");
    else s.rejected(place, "cannot load " + file + ": " + err);
    if (lt) dlclose(lt);
    return false;
  }
  auto give_up = [&](const std::string& why) {
    s.rejected(place, why);
    dlclose(h);
    if (lt) dlclose(lt);
    return false;
  };
  CublasApi api;
  api.cublasGetProperty = symbol<blas::PFN_cublasGetProperty>(h, "cublasGetProperty");
  const std::string where = path_of(reinterpret_cast<void*>(api.cublasGetProperty), file);
  libs.cublas.path = where;
  if (!api.cublasGetProperty) return give_up(where + " is not cuBLAS: it has no symbol cublasGetProperty");
  int major = 0, minor = 0, patch = 0;
  if (api.cublasGetProperty(blas::MAJOR_VERSION, &major) != blas::CUBLAS_STATUS_SUCCESS ||
      api.cublasGetProperty(blas::MINOR_VERSION, &minor) != blas::CUBLAS_STATUS_SUCCESS ||
      api.cublasGetProperty(blas::PATCH_LEVEL, &patch) != blas::CUBLAS_STATUS_SUCCESS)
    return give_up("cublasGetProperty failed in " + where);
  libs.cublas.version = static_cast<long long>(major) * 10000 + minor * 100 + patch;
  libs.cublas.version_string =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  if (major != 12 && major != 13)
    return give_up("found cuBLAS " + libs.cublas.version_string + " at " + where +
                   "; cuBLAS 12 or 13 is required");
  std::vector<std::string> missing;
#define ALEXNET_RESOLVE(name)                                   \
  api.name = symbol<blas::PFN_##name>(h, #name);                \
  if (!api.name) missing.push_back(#name);
  ALEXNET_CUBLAS_FUNCTIONS(ALEXNET_RESOLVE)
#undef ALEXNET_RESOLVE
  if (!missing.empty())
    return give_up("cuBLAS " + libs.cublas.version_string + " at " + where + " " + lacks_symbols(missing));
  // cuBLASLt through the same handle: dlsym(h) also searches libcublas's dependencies, among
  // them the libcublasLt it was linked against (preloaded above, or found by the loader).
  CublasLtApi lt_api;
  std::vector<std::string> lt_missing;
#define ALEXNET_RESOLVE_LT(name)                                \
  lt_api.name = symbol<blas::PFN_##name>(h, #name);             \
  if (!lt_api.name) lt_missing.push_back(#name);
  ALEXNET_CUBLASLT_FUNCTIONS(ALEXNET_RESOLVE_LT)
#undef ALEXNET_RESOLVE_LT
  if (lt_missing.empty()) {
    libs.cublaslt_ok = true;
    libs.cublaslt_api = lt_api;
  } else {
    libs.cublaslt_note = "cuBLASLt beside " + where + " " + lacks_symbols(lt_missing) + ": fused epilogues off";
    libs.cublas.notes.push_back(libs.cublaslt_note);
  }
  libs.cublas.searched.push_back(place + ": loaded " + where + " (cuBLAS " + libs.cublas.version_string + ")");
  libs.cublas.found = true;
  libs.cublas_ok = true;
  libs.cublas_api = api;
  return true;
}

// Tries libcublas.so.13 then .12 in `dir` (with libcublasLt.so.N from the same folder).
bool try_cublas_dir(Libraries& libs, Search& s, const std::string& dir, const std::string& place) {
  bool any = false;
  for (const char* major : kCublasMajors) {
    const std::string f = join(dir, std::string("libcublas.so.") + major);
    if (!exists(f)) continue;
    any = true;
    if (try_cublas(libs, s, f, join(dir, std::string("libcublasLt.so.") + major), place, false))
      return true;
  }
  if (!any) s.not_there(place, "no libcublas.so.13 or libcublas.so.12");
  return false;
}

// Where cuBLAS from cuDNN's installation would be: the same folder first, then the wheel
// layout's cuBLAS folders in the same site-packages, then the toolkit's lib64 / lib.
std::vector<std::string> cublas_beside(const Located& dn) {
  std::vector<std::string> out;
  if (dn.file.empty()) return out;
  std::set<std::string> seen;
  auto add = [&](const std::string& d) {
    if (!is_dir(d)) return;
    char* rp = realpath(d.c_str(), nullptr);
    const std::string key = rp ? rp : d;
    std::free(rp);
    if (seen.insert(key).second) out.push_back(d);
  };
  const std::string dir = dir_of(dn.file);
  add(dir);
  const std::string root = install_root(dn.file);
  if (dir.rfind("/nvidia/") != std::string::npos) {
    add(join(root, "nvidia/cu13/lib"));
    add(join(root, "nvidia/cublas/lib"));
  } else if (root != dir) {
    add(join(root, "lib64"));
    add(join(root, "lib"));
  }
  return out;
}

}  // namespace

void load_cublas(Libraries& libs, const Located& dn) {
  Search s(libs.cublas);
  const std::string what = "cuBLAS (libcublas.so.13 or libcublas.so.12)";
  const std::string over = env("ALEXNET_CUBLAS_PATH");
  if (!over.empty()) {
    const std::string place = "ALEXNET_CUBLAS_PATH=" + over;
    if (is_dir(over)) {
      try_cublas_dir(libs, s, over, place);
    } else if (exists(over)) {
      // libcublasLt of the same major, from the same folder: ".../libcublas.so.12" -> ".so.12"
      std::string lt;
      const std::string base = over.substr(over.find_last_of('/') + 1);
      const size_t dot = base.find(".so.");
      if (base.rfind("libcublas", 0) == 0 && dot != std::string::npos)
        lt = join(dir_of(over), "libcublasLt" + base.substr(dot));
      try_cublas(libs, s, over, lt, place, false);
    } else {
      s.not_there(place + " (no such file or folder)", "absent");
    }
    s.override_outcome(libs.cublas_ok, what, "ALEXNET_CUBLAS_PATH");
    return;
  }
  // a. beside cuDNN (the same installation), before anything else
  const std::vector<std::string> beside = cublas_beside(dn);
  std::set<std::string> tried;  // folders already tried beside cuDNN (real paths)
  for (const std::string& d : beside) {
    tried.insert(real(d));
    const std::string place = "beside cuDNN (" + dn.file + "): " + d;
    if (try_cublas_dir(libs, s, d, place)) {
      libs.cublas.chosen = "the same installation as cuDNN (" + dn.file + ", found first at " + dn.place + ")";
      return;
    }
  }
  std::string fallback = "the first usable cuBLAS in the search order: ";
  const std::string unmatched =
      dn.file.empty() ? " (no cuDNN file was found to match it to)"
                      : " (none usable beside cuDNN at " + dn.file + ")";
  // b. the usual order
  for (const char* major : kCublasMajors)
    if (try_cublas(libs, s, std::string("libcublas.so.") + major, "", kLoaderPath, true)) {
      libs.cublas.chosen = fallback + kLoaderPath + unmatched;
      return;
    }
  s.places.push_back(kLoaderPath);
  const auto toolkit = search_toolkits(s, [&](const Place& p) {
    if (tried.count(real(p.dir))) {
      s.st.searched.push_back(p.label + ": already tried beside cuDNN");
      return false;
    }
    return try_cublas_dir(libs, s, p.dir, p.label);
  });
  if (toolkit) {
    libs.cublas.chosen = fallback + *toolkit + unmatched;
    return;
  }
  const auto site = search_python_sites(s, {"nvidia/cu13/lib", "nvidia/cublas/lib"}, [&](const std::string& d) {
    if (!is_dir(d)) {
      s.st.searched.push_back(d + ": absent");
      return false;
    }
    if (tried.count(real(d))) {
      s.st.searched.push_back(d + ": already tried beside cuDNN");
      return false;
    }
    Search inner(libs.cublas);
    const bool ok = try_cublas_dir(libs, inner, d, d);
    for (auto& p : inner.problems) s.problems.push_back(p);
    return ok;
  });
  if (site) {
    libs.cublas.chosen = fallback + "Python site-packages " + *site + unmatched;
    return;
  }
  libs.cublas.reason = s.reason(
      what,
      "Install cuBLAS (pip install nvidia-cublas for CUDA 13 or nvidia-cublas-cu12, or the CUDA "
      "toolkit) or set ALEXNET_CUBLAS_PATH to libcublas.so.N or its folder.");
}

}  // namespace alexnet::cuda::dynload

#endif  // !_WIN32
