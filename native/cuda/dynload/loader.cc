// dlopen/dlsym binding to cuDNN 9 and cuBLAS 12/13; see loader.h for the search order.
#include "loader.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../../core/error.h"

#if !defined(_WIN32)
#include <dlfcn.h>
#include <glob.h>
#include <sys/stat.h>
#endif

namespace alexnet::cuda {

// ---- status names and error helpers (no library needed) ------------------------------------

namespace {
const char* exact_cudnn_name(int status) {
#define ALEXNET_NAME_CASE(name, value) \
  if (status == (value)) return #name;
  ALEXNET_CUDNN_STATUS(ALEXNET_NAME_CASE)  // canonical names come before the aliases
#undef ALEXNET_NAME_CASE
  return nullptr;
}
}  // namespace

std::string cudnn_status_name(int status) {
  if (const char* n = exact_cudnn_name(status)) return n;
  // cuDNN 9 may return sub-codes we do not list: name them by category (§A2 notes).
  const int category = dnn::cudnn_status_category(status);
  std::string cat;
  if (const char* n = exact_cudnn_name(category)) cat = n;
  if (category == 1000) cat = "CUDNN_STATUS_UNCATEGORIZED";
  if (category != 0 && !cat.empty()) return cat + " (sub-code " + std::to_string(status) + ")";
  return "CUDNN_STATUS_UNKNOWN (" + std::to_string(status) + ")";
}

std::string cublas_status_name(int status) {
#define ALEXNET_NAME_CASE(name, value) \
  if (status == (value)) return #name;
  ALEXNET_CUBLAS_STATUS(ALEXNET_NAME_CASE)
#undef ALEXNET_NAME_CASE
  return "CUBLAS_STATUS_UNKNOWN (" + std::to_string(status) + ")";
}

std::string call_name(const char* call) {
  std::string s = call ? call : "";
  const size_t paren = s.find('(');
  if (paren == std::string::npos) return s;
  s.erase(paren);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.pop_back();
  const size_t sep = s.find_last_of(".>: \t\n");
  if (sep != std::string::npos) s.erase(0, sep + 1);
  return s.empty() ? std::string(call) : s;
}

namespace {

// "…/native/cuda/conv.cu" -> "native/cuda/conv.cu"; otherwise the base name.
std::string short_file(const char* file) {
  std::string f = file ? file : "?";
  const size_t n = f.rfind("native/");
  if (n != std::string::npos) return f.substr(n);
  const size_t slash = f.find_last_of('/');
  return slash == std::string::npos ? f : f.substr(slash + 1);
}

}  // namespace

void throw_cudnn_error(int status, const char* call, const char* file, int line) {
  const std::string name = cudnn_status_name(status);
  const Libraries& libs = libraries();
  std::string text;
  std::string last;
  if (libs.cudnn_ok) {
    if (const char* t = libs.cudnn_api.cudnnGetErrorString(static_cast<dnn::cudnnStatus_t>(status)))
      text = t;
    if (libs.cudnn_api.cudnnGetLastErrorString) {
      char buf[1024];
      buf[0] = '\0';
      libs.cudnn_api.cudnnGetLastErrorString(buf, sizeof buf);
      buf[sizeof buf - 1] = '\0';
      last = buf;
    }
  }
  std::string detail = (text.empty() || text == name) ? "" : text + ", ";
  detail += "status " + std::to_string(status);
  std::string msg = call_name(call) + " failed: " + name + " (" + detail + ") at " +
                    short_file(file) + ":" + std::to_string(line);
  if (!last.empty()) msg += "\n  cuDNN: " + last;
  const bool oom = status == dnn::CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                   status == dnn::CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
  throw Error(oom ? code::kOutOfMemory : code::kCuda, msg);
}

void throw_cublas_error(int status, const char* call, const char* file, int line) {
  std::string name = cublas_status_name(status);
  std::string text;
  const Libraries& libs = libraries();
  if (libs.cublas_ok) {
    const auto s = static_cast<blas::cublasStatus_t>(status);
    if (const char* n = libs.cublas_api.cublasGetStatusName(s)) name = n;
    if (const char* t = libs.cublas_api.cublasGetStatusString(s)) text = t;
  }
  std::string detail = (text.empty() || text == name) ? "" : text + ", ";
  detail += "status " + std::to_string(status);
  std::string msg = call_name(call) + " failed: " + name + " (" + detail + ") at " +
                    short_file(file) + ":" + std::to_string(line);
  throw Error(status == blas::CUBLAS_STATUS_ALLOC_FAILED ? code::kOutOfMemory : code::kCuda, msg);
}

// ---- loading ----------------------------------------------------------------------------------

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

namespace {

constexpr const char* kCudnnSoname = "libcudnn.so.9";
// Sub-libraries the cuDNN 9 shim dlopens by soname (§A0), in dependency order.
constexpr const char* kCudnnSublibraries[] = {
    "libcudnn_graph.so.9",     "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9",
    "libcudnn_ops.so.9",       "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9"};
constexpr const char* kCublasMajors[] = {"13", "12"};  // newest first

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool is_dir(const std::string& p) {
  struct stat s;
  return !p.empty() && stat(p.c_str(), &s) == 0 && S_ISDIR(s.st_mode);
}

bool exists(const std::string& p) {
  struct stat s;
  return !p.empty() && stat(p.c_str(), &s) == 0;
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string dl_error() {
  const char* e = dlerror();
  return e ? std::string(e) : std::string("unknown dlopen error");
}

std::vector<std::string> glob_dirs(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g;
  std::memset(&g, 0, sizeof g);
  if (glob(pattern.c_str(), GLOB_ONLYDIR | GLOB_NOSORT, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  // newest Python first (python3.13 before python3.9)
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return strverscmp(a.c_str(), b.c_str()) > 0; });
  return out;
}

template <typename Fn>
Fn symbol(void* handle, const char* name) {
  dlerror();
  void* p = dlsym(handle, name);
  return reinterpret_cast<Fn>(p);
}

std::string path_of(void* fn, const std::string& fallback) {
  Dl_info info;
  if (fn && dladdr(fn, &info) != 0 && info.dli_fname && info.dli_fname[0]) return info.dli_fname;
  return fallback;
}

// "9.6.0" from 90600 (9.x scale) or "8.9.1" from 8901 (8.x scale, §A0).
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

// A folder the search visits, with how the reason names it.
struct Place {
  std::string label;
  std::string dir;
};

// $CUDA_HOME, $CUDA_PATH, /usr/local/cuda: lib64 and lib, existing folders only. What was
// unset or absent goes to `skipped` so the reason can say so.
std::vector<Place> toolkit_places(std::vector<std::string>& skipped) {
  std::vector<Place> out;
  std::set<std::string> seen;
  auto add_root = [&](const std::string& root, const std::string& label) {
    bool any = false;
    for (const char* sub : {"lib64", "lib"}) {
      const std::string d = join(root, sub);
      if (!is_dir(d)) continue;
      any = true;
      char* rp = realpath(d.c_str(), nullptr);
      const std::string key = rp ? rp : d;
      std::free(rp);
      if (!seen.insert(key).second) continue;
      out.push_back({label.empty() ? d : label + " = " + d, d});
    }
    if (!any) skipped.push_back(label.empty() ? root + " (absent)" : label + " = " + root + " (no lib64 or lib folder)");
  };
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    const std::string v = env(var);
    if (v.empty()) skipped.push_back(std::string("$") + var + " (unset)");
    else add_root(v, std::string("$") + var);
  }
  add_root("/usr/local/cuda", "");
  return out;
}

// site-packages / dist-packages folders that exist, in search order, without duplicates.
std::vector<std::string> python_sites() {
  std::vector<std::string> patterns;
  const std::string extra = env("ALEXNET_PYTHON_SITE");
  size_t start = 0;
  while (start <= extra.size() && !extra.empty()) {
    const size_t colon = extra.find(':', start);
    const std::string part = extra.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!part.empty()) patterns.push_back(part);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  for (const char* var : {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
    const std::string v = env(var);
    if (!v.empty()) patterns.push_back(join(v, "lib/python3*/site-packages"));
  }
  const std::string home = env("HOME");
  if (!home.empty()) {
    patterns.push_back(join(home, ".local/lib/python3*/site-packages"));
    patterns.push_back(join(home, ".pyenv/versions/*/lib/python3*/site-packages"));
  }
  for (const char* p : {"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
                        "/usr/lib/python3/dist-packages", "/usr/lib/python3*/dist-packages",
                        "/usr/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages"})
    patterns.push_back(p);
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& pat : patterns) {
    for (const std::string& d : glob_dirs(pat)) {
      char* rp = realpath(d.c_str(), nullptr);
      const std::string key = rp ? rp : d;
      std::free(rp);
      if (seen.insert(key).second) out.push_back(d);
    }
  }
  return out;
}

// Collects what one library's search saw, and turns it into the reason.
struct Search {
  explicit Search(LibraryStatus& status) : st(status) {}
  LibraryStatus& st;
  std::vector<std::string> places;    // where we looked (compact, for the reason)
  std::vector<std::string> problems;  // files that exist but were rejected, with why
  std::string sites_summary;          // "nvidia/... in N Python site-packages folders (...)"

  void not_there(const std::string& place, const std::string& what) {
    st.searched.push_back(place + ": " + what);
    places.push_back(place);
  }
  void rejected(const std::string& place, const std::string& why) {
    st.searched.push_back(place + ": " + why);
    places.push_back(place);
    problems.push_back(why);
  }

  std::string reason(const std::string& what, const std::string& hint) const {
    std::string r = what + (problems.empty() ? " not found" : " not usable");
    if (!problems.empty()) {
      r += ": ";
      const size_t shown = std::min<size_t>(problems.size(), 4);
      for (size_t i = 0; i < shown; ++i) r += (i ? "; " : "") + problems[i];
      if (problems.size() > shown)
        r += "; and " + std::to_string(problems.size() - shown) + " more";
    }
    r += ". Looked in: ";
    const size_t limit = 10;
    const size_t shown = std::min(places.size(), limit);
    for (size_t i = 0; i < shown; ++i) r += (i ? "; " : "") + places[i];
    if (places.size() > shown)
      r += "; and " + std::to_string(places.size() - shown) +
           " more (cudaLibraries() lists every place)";
    if (!sites_summary.empty()) r += (places.empty() ? "" : "; ") + sites_summary;
    else if (places.empty()) r += "nowhere";
    r += ". " + hint;
    return r;
  }
};

// "nvidia/cudnn/lib in 3 Python site-packages folders: A, B, and 1 more"
std::string summarize_sites(const std::vector<std::string>& sites, const std::string& subdirs) {
  if (sites.empty())
    return "Python site-packages (none found under $VIRTUAL_ENV, $CONDA_PREFIX, ~/.local, ~/.pyenv, "
           "/usr/local/lib, /usr/lib, /opt/conda; set ALEXNET_PYTHON_SITE)";
  std::string r = subdirs + " in " + std::to_string(sites.size()) + " Python site-packages folder" +
                  (sites.size() > 1 ? "s" : "") + " (";
  const size_t shown = std::min<size_t>(sites.size(), 3);
  for (size_t i = 0; i < shown; ++i) r += (i ? ", " : "") + sites[i];
  if (sites.size() > shown) r += ", and " + std::to_string(sites.size() - shown) + " more";
  return r + ")";
}

const std::string kLoaderPath = "the dynamic loader's search path (LD_LIBRARY_PATH, /etc/ld.so.cache, /lib, /usr/lib)";

bool is_not_found_error(const std::string& err, const std::string& soname) {
  return err.rfind(soname + ": cannot open shared object file", 0) == 0;
}

// ---- cuDNN -------------------------------------------------------------------------------------

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
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 8) list += ", and " + std::to_string(missing.size() - 8) + " more";
    s.rejected(place, "cuDNN " + libs.cudnn.version_string + " at " + where + " lacks symbol" +
                          (missing.size() > 1 ? "s " : " ") + list);
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
  for (const std::string& k : skipped) {
    s.st.searched.push_back(k);
    s.places.push_back(k);
  }
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

// ---- cuBLAS ------------------------------------------------------------------------------------

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
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 8) list += ", and " + std::to_string(missing.size() - 8) + " more";
    return give_up("cuBLAS " + libs.cublas.version_string + " at " + where + " lacks symbol" +
                   (missing.size() > 1 ? "s " : " ") + list);
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

// ---- matching cuBLAS to cuDNN -------------------------------------------------------------------

// Folders the dynamic loader searches for a soname, as far as they can be listed without
// loading anything: LD_LIBRARY_PATH, /etc/ld.so.conf (and the files it includes), then the
// system library folders. Existing folders only, in that order, without duplicates.
std::vector<std::string> loader_dirs() {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& d) {
    if (d.empty() || !is_dir(d)) return;
    char* rp = realpath(d.c_str(), nullptr);
    const std::string key = rp ? rp : d;
    std::free(rp);
    if (seen.insert(key).second) out.push_back(d);
  };
  const std::string ld = env("LD_LIBRARY_PATH");
  for (size_t start = 0; start <= ld.size() && !ld.empty();) {
    const size_t colon = ld.find(':', start);
    add(ld.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  // ld.so.conf: one folder a line, '#' comments, "include <glob>" (followed one level deep).
  std::function<void(const std::string&, int)> read_conf = [&](const std::string& file, int depth) {
    FILE* f = std::fopen(file.c_str(), "r");
    if (!f) return;
    char line[4096];
    while (std::fgets(line, sizeof line, f)) {
      std::string l = line;
      const size_t hash = l.find('#');
      if (hash != std::string::npos) l.erase(hash);
      while (!l.empty() && std::isspace(static_cast<unsigned char>(l.back()))) l.pop_back();
      size_t b = 0;
      while (b < l.size() && std::isspace(static_cast<unsigned char>(l[b]))) ++b;
      l.erase(0, b);
      if (l.empty()) continue;
      if (l.rfind("include", 0) == 0 && l.size() > 7 && std::isspace(static_cast<unsigned char>(l[7]))) {
        if (depth > 0) continue;
        std::string pattern = l.substr(8);
        while (!pattern.empty() && std::isspace(static_cast<unsigned char>(pattern.front()))) pattern.erase(0, 1);
        if (!pattern.empty() && pattern[0] != '/') pattern = join("/etc", pattern);
        glob_t g;
        std::memset(&g, 0, sizeof g);
        if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
          for (size_t i = 0; i < g.gl_pathc; ++i) read_conf(g.gl_pathv[i], depth + 1);
        globfree(&g);
        continue;
      }
      add(l);
    }
    std::fclose(f);
  };
  read_conf("/etc/ld.so.conf", 0);
  for (const char* d : {"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/lib/x86_64-linux-gnu",
                        "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"})
    add(d);
  return out;
}

// cuDNN's file as the cuDNN search would meet it first, found without loading anything.
struct Located {
  std::string file;   // "" when no libcudnn.so.9 exists anywhere the search looks
  std::string place;  // how the search names where it is
};

Located locate_cudnn() {
  const std::string over = env("ALEXNET_CUDNN_PATH");
  if (!over.empty()) {
    const std::string f = is_dir(over) ? join(over, kCudnnSoname) : over;
    if (exists(f)) return {f, "ALEXNET_CUDNN_PATH=" + over};
    return {};
  }
  for (const std::string& d : loader_dirs()) {
    const std::string f = join(d, kCudnnSoname);
    if (exists(f)) return {f, kLoaderPath + " (" + d + ")"};
  }
  std::vector<std::string> skipped;
  for (const Place& p : toolkit_places(skipped)) {
    const std::string f = join(p.dir, kCudnnSoname);
    if (exists(f)) return {f, p.label};
  }
  for (const std::string& site : python_sites())
    for (const char* sub : {"nvidia/cudnn/lib", "nvidia/cu13/lib"}) {
      const std::string f = join(join(site, sub), kCudnnSoname);
      if (exists(f)) return {f, "Python site-packages " + site};
    }
  return {};
}

// ".../site-packages/nvidia/cudnn/lib/libcudnn.so.9" -> ".../site-packages"; ".../cuda/lib64/x"
// -> ".../cuda"; else the file's folder.
std::string install_root(const std::string& file) {
  const std::string dir = dir_of(file);
  const size_t nv = dir.rfind("/nvidia/");
  if (nv != std::string::npos && nv > 0) return dir.substr(0, nv);
  for (const char* lib : {"/lib64", "/lib"}) {
    const std::string suffix = lib;
    if (dir.size() > suffix.size() && dir.compare(dir.size() - suffix.size(), suffix.size(), suffix) == 0)
      return dir.substr(0, dir.size() - suffix.size());
  }
  return dir;
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

std::string real(const std::string& p) {
  char* rp = realpath(p.c_str(), nullptr);
  const std::string r = rp ? rp : p;
  std::free(rp);
  return r;
}

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
    if (!libs.cublas_ok)
      libs.cublas.reason = s.reason(what, "Fix or unset ALEXNET_CUBLAS_PATH (it is the only place tried when set).");
    else
      libs.cublas.chosen = "ALEXNET_CUBLAS_PATH (an explicit choice: the only place tried)";
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
  std::vector<std::string> skipped;
  for (const Place& p : toolkit_places(skipped)) {
    if (tried.count(real(p.dir))) {
      s.st.searched.push_back(p.label + ": already tried beside cuDNN");
      continue;
    }
    if (try_cublas_dir(libs, s, p.dir, p.label)) {
      libs.cublas.chosen = fallback + p.label + unmatched;
      return;
    }
  }
  for (const std::string& k : skipped) {
    s.st.searched.push_back(k);
    s.places.push_back(k);
  }
  const std::vector<std::string> sites = python_sites();
  for (const std::string& site : sites) {
    for (const char* sub : {"nvidia/cu13/lib", "nvidia/cublas/lib"}) {
      const std::string d = join(site, sub);
      if (!is_dir(d)) {
        s.st.searched.push_back(d + ": absent");
        continue;
      }
      if (tried.count(real(d))) {
        s.st.searched.push_back(d + ": already tried beside cuDNN");
        continue;
      }
      Search inner(libs.cublas);
      const bool ok = try_cublas_dir(libs, inner, d, d);
      for (auto& p : inner.problems) s.problems.push_back(p);
      if (ok) {
        libs.cublas.chosen = fallback + "Python site-packages " + site + unmatched;
        return;
      }
    }
  }
  s.sites_summary = summarize_sites(sites, "nvidia/cu13/lib and nvidia/cublas/lib");
  libs.cublas.reason = s.reason(
      what,
      "Install cuBLAS (pip install nvidia-cublas for CUDA 13 or nvidia-cublas-cu12, or the CUDA "
      "toolkit) or set ALEXNET_CUBLAS_PATH to libcublas.so.N or its folder.");
}

}  // namespace

const Libraries& libraries() {
  static Libraries libs;
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      // cuDNN's file first, only located; then cuBLAS, preferring cuDNN's installation, loaded
      // before cuDNN because its libcublasLt also serves cuDNN 9 (§A0); then cuDNN.
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

}  // namespace alexnet::cuda
