// Internal to the run-time library searches (the rest of native/ includes loader.h only): the
// pieces the library search is built from, shared by search.cc, cudnn_loader.cc,
// cublas_loader.cc, loader.cc and NCCL's native/dist/nccl_loader.cc (same places, same reasons). The search order itself is described in loader.h. Linux only (dlopen).
#pragma once

#if !defined(_WIN32)

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../../core/dynlib.h"
#include "loader.h"

namespace alexnet::cuda::dynload {

constexpr const char* kCudnnSoname = "libcudnn.so.9";
// The folders of a pip wheel layout that hold it, under a Python site-packages folder.
constexpr std::array<const char*, 2> kCudnnWheelDirs = {"nvidia/cudnn/lib", "nvidia/cu13/lib"};

// ---- files, folders, dlopen (native/core/dynlib.h, shared with the Open MPI loader) ---------

using dynlib::dir_of;
using dynlib::dl_error;
using dynlib::env;
using dynlib::exists;
using dynlib::glob_dirs;
using dynlib::is_dir;
using dynlib::join;
using dynlib::path_of;
using dynlib::real;
using dynlib::symbol;

// ---- the places searched (search.cc) ---------------------------------------------------------

// A folder the search visits, with how the reason names it.
struct Place {
  std::string label;
  std::string dir;
};

// $CUDA_HOME, $CUDA_PATH, /usr/local/cuda: lib64 and lib, existing folders only. What was
// unset or absent goes to `skipped` so the reason can say so.
std::vector<Place> toolkit_places(std::vector<std::string>& skipped);

// site-packages / dist-packages folders that exist, in search order, without duplicates.
std::vector<std::string> python_sites();

// Folders the dynamic loader searches for a soname, as far as they can be listed without
// loading anything: LD_LIBRARY_PATH, /etc/ld.so.conf (and the files it includes), then the
// system library folders. Existing folders only, in that order, without duplicates.
std::vector<std::string> loader_dirs();

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
  // Toolkit roots that were unset or had no library folder (toolkit_places' `skipped`).
  void skipped(const std::vector<std::string>& roots) {
    for (const std::string& k : roots) {
      st.searched.push_back(k);
      places.push_back(k);
    }
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

  // After the only place an override variable (ALEXNET_CUDNN_PATH, ALEXNET_CUBLAS_PATH) names
  // was tried: why the file was taken (`ok`), or the reason nothing was.
  void override_outcome(bool ok, const std::string& what, const std::string& variable) {
    if (!ok)
      st.reason = reason(what, "Fix or unset " + variable + " (it is the only place tried when set).");
    else
      st.chosen = variable + " (an explicit choice: the only place tried)";
  }
};

// "nvidia/cudnn/lib in 3 Python site-packages folders: A, B, and 1 more"
std::string summarize_sites(const std::vector<std::string>& sites, const std::string& subdirs);

// Step 3 of the search: `attempt(place)` on each toolkit folder (toolkit_places), in order,
// until one returns true. Returns that folder's label, or nullopt once the roots that were unset
// or had no library folder are noted (Search::skipped).
std::optional<std::string> search_toolkits(Search& s, const std::function<bool(const Place&)>& attempt);

// Step 4: `attempt(folder)` on <site>/<subdirs[0]> then <site>/<subdirs[1]> for each Python
// site-packages folder (python_sites), in order, until one returns true. Returns that
// site-packages folder, or nullopt once s.sites_summary names what was looked through.
std::optional<std::string> search_python_sites(Search& s, const std::array<const char*, 2>& subdirs,
                                               const std::function<bool(const std::string&)>& attempt);

inline const std::string kLoaderPath = "the dynamic loader's search path (LD_LIBRARY_PATH, /etc/ld.so.cache, /lib, /usr/lib)";

// "lacks symbol X" or "lacks symbols A, B, ..., and N more" (the first eight named).
std::string lacks_symbols(const std::vector<std::string>& missing);

// Whether dlopen's error says the soname was not found at all (rather than found but broken).
bool is_not_found_error(const std::string& err, const std::string& soname);

// ---- matching cuBLAS to cuDNN (search.cc) -----------------------------------------------------

// cuDNN's file as the cuDNN search would meet it first, found without loading anything.
struct Located {
  std::string file;   // "" when no libcudnn.so.9 exists anywhere the search looks
  std::string place;  // how the search names where it is
};

Located locate_cudnn();

// ".../site-packages/nvidia/cudnn/lib/libcudnn.so.9" -> ".../site-packages"; ".../cuda/lib64/x"
// -> ".../cuda"; else the file's folder.
std::string install_root(const std::string& file);

// ---- the per-library loaders --------------------------------------------------------------------

// cudnn_loader.cc: fills libs.cudnn and, when found, libs.cudnn_api / libs.cudnn_ok.
void load_cudnn(Libraries& libs);
// cublas_loader.cc: fills libs.cublas and, when found, libs.cublas_api / libs.cublas_ok,
// preferring the installation cuDNN's file `dn` belongs to.
void load_cublas(Libraries& libs, const Located& dn);

}  // namespace alexnet::cuda::dynload

#endif  // !_WIN32
