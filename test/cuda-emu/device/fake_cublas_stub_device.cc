// A trivial emulated device (emu_device.h) for fake_cublas_check.cc only, so the stand-in
// cuBLAS can be checked before (and without) the emulated runtime: work runs at once unless
// the check asks to defer it (standing in for graph capture: replayed later, so a closure that
// kept a reference to the caller's stack would compute with garbage); "device memory" is
// whatever the check registered, and a failed require_device_memory is recorded, not fatal,
// so the check can count it. Not the emulated runtime (test/cuda-emu/device/runtime.cc).
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "emu_device.h"

namespace {
std::map<uintptr_t, size_t> g_mem;  // start -> bytes
std::vector<std::string> g_failures;
bool g_defer = false;
std::vector<std::function<void()>> g_deferred;
}  // namespace

extern "C" {
void stub_register(const void* p, size_t bytes) { g_mem[reinterpret_cast<uintptr_t>(p)] = bytes; }
void stub_unregister(const void* p) { g_mem.erase(reinterpret_cast<uintptr_t>(p)); }
size_t stub_failure_count() { return g_failures.size(); }
const char* stub_failure(size_t i) { return i < g_failures.size() ? g_failures[i].c_str() : ""; }
void stub_clear_failures() { g_failures.clear(); }
void stub_set_defer(bool on) { g_defer = on; }
size_t stub_run_deferred() {
  const size_t n = g_deferred.size();
  for (auto& w : g_deferred) w();
  g_deferred.clear();
  return n;
}
}

namespace emu {

void enqueue(CUstream_st*, const char*, std::function<void()> work) {
  if (g_defer) g_deferred.push_back(std::move(work));
  else work();
}

bool capturing(CUstream_st*) { return g_defer; }

bool is_device_memory(const void* p, size_t bytes) {
  const auto u = reinterpret_cast<uintptr_t>(p);
  auto it = g_mem.upper_bound(u);
  if (it == g_mem.begin()) return false;
  --it;
  return u >= it->first && u + bytes <= it->first + it->second && (bytes > 0 || u < it->first + it->second);
}

void require_device_memory(const void* p, size_t bytes, const char* what) {
  if (!is_device_memory(p, bytes)) g_failures.push_back(std::string(what) + " (" + std::to_string(bytes) + " bytes)");
}

void fail(const char* what) { throw std::runtime_error(std::string("EMU FAIL: ") + what); }

}  // namespace emu
