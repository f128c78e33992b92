// See dynlib.h.
#if !defined(_WIN32)

#include "dynlib.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace alexnet::dynlib {

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
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return strverscmp(a.c_str(), b.c_str()) > 0; });
  return out;
}

std::string path_of(void* sym, const std::string& fallback) {
  Dl_info info;
  if (sym != nullptr && dladdr(sym, &info) != 0 && info.dli_fname != nullptr && info.dli_fname[0] != '\0')
    return info.dli_fname;
  return fallback;
}

std::string real(const std::string& p) {
  char* rp = realpath(p.c_str(), nullptr);
  const std::string r = rp ? rp : p;
  std::free(rp);
  return r;
}

}  // namespace alexnet::dynlib

#endif  // !_WIN32
