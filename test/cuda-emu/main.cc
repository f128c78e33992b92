// Runs the emulator's cases (all, or those whose name contains one of the arguments).
#include <chrono>
#include <exception>

#include "../../native/core/error.h"
#include "harness.h"

namespace emu_test {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

namespace {
std::mt19937_64 g_rng;
uint64_t g_seed = 0;
int g_failures = 0;
int g_reported = 0;
const char* g_case = "";
}  // namespace

std::mt19937_64& rng() { return g_rng; }
uint64_t run_seed() { return g_seed; }
int failures() { return g_failures; }

void fail_at(const char* file, int line, const std::string& what) {
  ++g_failures;
  if (++g_reported <= 8) std::printf("  FAIL %s: %s (%s:%d)\n", g_case, what.c_str(), file, line);
}

void expect_close(const char* what, const float* got, const double* want, size_t n, double atol, double rtol) {
  int shown = 0;
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const double g = got[i], w = want[i];
    const bool ok = std::isnan(w) ? std::isnan(g) : (!std::isnan(g) && std::fabs(g - w) <= atol + rtol * std::fabs(w)) || g == w;
    if (ok) continue;
    ++bad;
    if (shown++ < 3) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s[%zu] = %.9g, want %.9g", what, i, g, w);
      fail_at(__FILE__, __LINE__, buf);
    }
  }
  if (bad > 3) fail_at(__FILE__, __LINE__, std::string(what) + ": " + std::to_string(bad) + " mismatches in all");
}

void expect_same(const char* what, const float* got, const float* want, size_t n) {
  std::vector<double> w(want, want + n);
  expect_close(what, got, w.data(), n, 0, 0);
}

void expect_same_bits(const char* what, const uint16_t* got, const uint16_t* want, size_t n) {
  int shown = 0;
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (got[i] == want[i]) continue;
    const bool both_nan = (got[i] & 0x7fff) > 0x7f80 && (want[i] & 0x7fff) > 0x7f80;
    if (both_nan) continue;
    ++bad;
    if (shown++ < 3) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s[%zu] = 0x%04x, want 0x%04x", what, i, got[i], want[i]);
      fail_at(__FILE__, __LINE__, buf);
    }
  }
  if (bad > 3) fail_at(__FILE__, __LINE__, std::string(what) + ": " + std::to_string(bad) + " mismatches in all");
}

}  // namespace emu_test

int main(int argc, char** argv) {
  using namespace emu_test;
  const char* env = std::getenv("EMU_SEED");
  g_seed = env ? std::strtoull(env, nullptr, 10)
               : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("emu: seed %llu (EMU_SEED=%llu reruns it)\n", static_cast<unsigned long long>(g_seed),
              static_cast<unsigned long long>(g_seed));
  int ran = 0, failed = 0;
  for (const Case& c : registry()) {
    bool wanted = argc <= 1;
    for (int i = 1; i < argc; ++i) wanted = wanted || std::strstr(c.name, argv[i]) != nullptr;
    if (!wanted) continue;
    g_case = c.name;
    g_rng.seed(g_seed ^ std::hash<std::string>{}(c.name));
    const int before = g_failures;
    g_reported = 0;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      c.fn();
    } catch (const std::exception& e) {
      fail_at(__FILE__, __LINE__, std::string("threw: ") + e.what());
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const bool ok = g_failures == before;
    ++ran;
    if (!ok) ++failed;
    std::printf("%s %s (%.0f ms)\n", ok ? "ok  " : "FAIL", c.name, ms);
    std::fflush(stdout);
  }
  std::printf("emu: %d cases, %d failed\n", ran, failed);
  return ran == 0 ? 2 : failed == 0 ? 0 : 1;
}
