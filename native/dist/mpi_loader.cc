// The Open MPI loader: the search described in mpi_loader.h.
#include "mpi_loader.h"

#include <algorithm>
#include <mutex>
#include <sstream>

#include "../core/dynlib.h"
#include "../core/error.h"

#if !defined(_WIN32)
#include <dlfcn.h>

#include <cstring>
#endif

namespace alexnet::dist {

namespace {

constexpr const char* kSoname = "libmpi.so.40";

#define ALEXNET_MPI_COUNT(...) +1
constexpr size_t kObjects = 0 ALEXNET_MPI_OBJECTS(ALEXNET_MPI_COUNT);
#undef ALEXNET_MPI_COUNT

#if !defined(_WIN32)

// file and folder checks, dlopen helpers: core/dynlib.h (shared with the cuDNN/cuBLAS search)
using dynlib::dl_error;
using dynlib::env;
using dynlib::exists;
using dynlib::glob_dirs;
using dynlib::is_dir;
using dynlib::path_of;

// Opens `what` and resolves the table; on failure closes it and returns the reason.
// On success fills lib.api, lib.path and lib.version.
bool try_load(const std::string& what, MpiLibrary& lib, std::string& why) {
  dlerror();
  void* h = dlopen(what.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (h == nullptr) {
    why = dl_error();
    return false;
  }
  MpiApi api;
  std::vector<std::string> missing;
  // The Open MPI globals first: a library without them is not Open MPI (MPICH: integer handles).
#define ALEXNET_MPI_OBJECT(member, type, global, macro)                 \
  dlerror();                                                            \
  api.member = static_cast<mpi::type>(dlsym(h, #global));               \
  if (api.member == nullptr) missing.emplace_back(#global);
  ALEXNET_MPI_OBJECTS(ALEXNET_MPI_OBJECT)
#undef ALEXNET_MPI_OBJECT
  if (missing.size() == kObjects) {
    why = "not Open MPI: it exports none of the ompi_mpi_* predefined objects (MPICH and its "
          "derivatives have another ABI, which this build does not support)";
    lib.path = path_of(dlsym(h, "MPI_Init"), what);
    dlclose(h);
    return false;
  }
#define ALEXNET_MPI_MEMBER(name)                                     \
  dlerror();                                                         \
  api.name = reinterpret_cast<mpi::PFN_##name>(dlsym(h, #name));     \
  if (api.name == nullptr) missing.emplace_back(#name);
  ALEXNET_MPI_FUNCTIONS(ALEXNET_MPI_MEMBER)
#undef ALEXNET_MPI_MEMBER
  lib.path = path_of(reinterpret_cast<void*>(api.MPI_Init_thread), path_of(api.comm_world, what));
  if (!missing.empty()) {
    std::ostringstream os;
    os << "missing symbols:";
    for (const auto& m : missing) os << ' ' << m;
    why = os.str();
    dlclose(h);
    return false;
  }
  char version[mpi::MPI_MAX_LIBRARY_VERSION_STRING + 1] = {};
  int len = 0;
  if (api.MPI_Get_library_version(version, &len) == mpi::MPI_SUCCESS) {
    std::string v(version, static_cast<size_t>(std::clamp(len, 0, mpi::MPI_MAX_LIBRARY_VERSION_STRING)));
    const size_t nl = v.find('\n');
    if (nl != std::string::npos) v.resize(nl);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\0' || v.back() == '\r')) v.pop_back();
    lib.version = v;
  }
  lib.api = api;  // the handle stays open for the life of the process
  return true;
}

// A place to look: a file, or a folder holding libmpi.so.40.
bool try_place(const std::string& label, const std::string& place, MpiLibrary& lib) {
  std::string file = place;
  if (is_dir(place)) file = place + "/" + kSoname;
  if (!exists(file)) {
    lib.searched.push_back(label + ": " + file + ": no such file");
    return false;
  }
  std::string why;
  if (try_load(file, lib, why)) {
    lib.searched.push_back(label + ": " + file + ": loaded");
    return true;
  }
  lib.searched.push_back(label + ": " + file + ": " + why);
  return false;
}

MpiLibrary load() {
  MpiLibrary lib;
  const std::string override_path = env("ALEXNET_MPI_LIBRARY");
  if (!override_path.empty()) {
    lib.found = try_place("ALEXNET_MPI_LIBRARY", override_path, lib);
  } else {
    std::string why;
    if (try_load(kSoname, lib, why)) {
      lib.found = true;
      lib.searched.push_back(std::string("the dynamic loader (") + kSoname + "): loaded");
    } else {
      lib.searched.push_back(std::string("the dynamic loader (") + kSoname + "): " + why);
      std::vector<std::pair<std::string, std::string>> places;  // label, prefix
      for (const char* var : {"MPI_HOME", "MPI_ROOT", "OPAL_PREFIX"}) {
        const std::string v = env(var);
        if (v.empty()) lib.searched.push_back(std::string("$") + var + ": unset");
        else places.emplace_back(std::string("$") + var, v);
      }
      for (const char* p : {"/usr/lib64/openmpi", "/opt/openmpi", "/usr/local", "/opt/hpcx/ompi", "/opt/amazon/openmpi"})
        places.emplace_back(p, p);
      for (const auto& d : glob_dirs("/usr/mpi/gcc/openmpi-*")) places.emplace_back(d, d);
      for (const auto& [label, prefix] : places) {
        for (const char* sub : {"lib", "lib64"}) {
          const std::string dir = prefix + "/" + sub;
          if (!is_dir(dir)) continue;
          if (try_place(label, dir, lib)) {
            lib.found = true;
            break;
          }
        }
        if (lib.found) break;
        if (!is_dir(prefix + "/lib") && !is_dir(prefix + "/lib64")) lib.searched.push_back(prefix + ": absent");
      }
    }
  }
  if (!lib.found) {
    lib.api = MpiApi{};
    std::ostringstream os;
    os << "Open MPI (" << kSoname << ", Open MPI 4.x or 5.x; MPICH's ABI differs and is not supported) was not found; looked in: ";
    for (size_t i = 0; i < lib.searched.size(); ++i) os << (i ? "; " : "") << lib.searched[i];
    os << ". Install Open MPI (Debian/Ubuntu: openmpi-bin libopenmpi-dev) or set ALEXNET_MPI_LIBRARY to its libmpi.so.40";
    lib.reason = os.str();
  }
  return lib;
}

#else  // _WIN32

MpiLibrary load() {
  MpiLibrary lib;
  lib.reason = "Open MPI is loaded at run time on Linux only";
  return lib;
}

#endif

}  // namespace

const MpiLibrary& mpi_library() {
  static std::once_flag once;
  static MpiLibrary* lib = nullptr;  // leaked on purpose: used until the process ends
  std::call_once(once, [] { lib = new MpiLibrary(load()); });
  return *lib;
}

const MpiApi& mpi_table() {
  const MpiLibrary& lib = mpi_library();
  if (!lib.found) fail(code::kDist, lib.reason);
  return lib.api;
}

void throw_mpi_error(int rc, const char* call) {
  std::string text;
  const MpiLibrary& lib = mpi_library();
  if (lib.found) {
    char buf[mpi::MPI_MAX_ERROR_STRING + 1] = {};
    int len = 0;
    if (lib.api.MPI_Error_string(rc, buf, &len) == mpi::MPI_SUCCESS)
      text.assign(buf, static_cast<size_t>(std::clamp(len, 0, mpi::MPI_MAX_ERROR_STRING)));
  }
  fail(code::kDist, call, " failed: ", text.empty() ? std::string("unknown MPI error") : text, " (error ", rc, ")");
}

}  // namespace alexnet::dist
