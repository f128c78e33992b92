// The library search's building blocks (see search.h; the file and folder checks are
// core/dynlib.h's): the places
// searched (toolkit folders, Python site-packages, the dynamic loader's folders), the reason
// text, and where cuDNN's file is before anything is loaded.
#if !defined(_WIN32)

#include "search.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace alexnet::cuda::dynload {

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

std::optional<std::string> search_toolkits(Search& s, const std::function<bool(const Place&)>& attempt) {
  std::vector<std::string> skipped;
  for (const Place& p : toolkit_places(skipped))
    if (attempt(p)) return p.label;
  s.skipped(skipped);
  return std::nullopt;
}

std::optional<std::string> search_python_sites(Search& s, const std::array<const char*, 2>& subdirs,
                                               const std::function<bool(const std::string&)>& attempt) {
  const std::vector<std::string> sites = python_sites();
  for (const std::string& site : sites)
    for (const char* sub : subdirs)
      if (attempt(join(site, sub))) return site;
  s.sites_summary = summarize_sites(sites, std::string(subdirs[0]) + " and " + subdirs[1]);
  return std::nullopt;
}

std::string lacks_symbols(const std::vector<std::string>& missing) {
  std::string list;
  for (size_t i = 0; i < missing.size() && i < 8; ++i) list += (i ? ", " : "") + missing[i];
  if (missing.size() > 8) list += ", and " + std::to_string(missing.size() - 8) + " more";
  return std::string("lacks symbol") + (missing.size() > 1 ? "s " : " ") + list;
}

bool is_not_found_error(const std::string& err, const std::string& soname) {
  return err.rfind(soname + ": cannot open shared object file", 0) == 0;
}

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
    for (const char* sub : kCudnnWheelDirs) {
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

}  // namespace alexnet::cuda::dynload

#endif  // !_WIN32
