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

namespace {

// The shared loop of the bit comparisons: U the bit pattern's type, `is_nan` the format's test.
template <typename U>
void compare_bits(const std::string& what, const U* got, const U* want, size_t n, Nan nan, bool (*is_nan)(U),
                  const char* (*show)(char*, size_t, U)) {
  int shown = 0;
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (got[i] == want[i]) continue;
    if (nan == Nan::Any && is_nan(got[i]) && is_nan(want[i])) continue;
    ++bad;
    if (shown++ < 3) {
      char g[64], w[64], buf[256];
      std::snprintf(buf, sizeof buf, "%s[%zu] = %s, want %s", what.c_str(), i, show(g, sizeof g, got[i]), show(w, sizeof w, want[i]));
      fail_at(__FILE__, __LINE__, buf);
    }
  }
  if (bad > 3) fail_at(__FILE__, __LINE__, what + ": " + std::to_string(bad) + " mismatches in all");
}

}  // namespace

void expect_same_bits(const std::string& what, const uint16_t* got, const uint16_t* want, size_t n, Nan nan) {
  compare_bits<uint16_t>(
      what, got, want, n, nan, [](uint16_t h) { return (h & 0x7fff) > 0x7f80; },
      [](char* buf, size_t size, uint16_t h) -> const char* {
        std::snprintf(buf, size, "0x%04x", h);
        return buf;
      });
}

void expect_same_bits(const std::string& what, const float* got, const float* want, size_t n, Nan nan) {
  std::vector<uint32_t> g(n), w(n);
  for (size_t i = 0; i < n; ++i) {
    g[i] = alexnet::bf16::float_bits(got[i]);
    w[i] = alexnet::bf16::float_bits(want[i]);
  }
  compare_bits<uint32_t>(
      what, g.data(), w.data(), n, nan, [](uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; },
      [](char* buf, size_t size, uint32_t u) -> const char* {
        std::snprintf(buf, size, "%.9g (0x%08x)", static_cast<double>(alexnet::bf16::bits_float(u)), u);
        return buf;
      });
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
