// The emulator's test cases: a registry, fresh random inputs, float64 references and checks.
// Every case runs our real launcher (native/cuda/ops.h) on host memory through the emulator and
// compares with a reference computed here, in double, from the same inputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/core/bf16.h"

namespace emu_test {

using Fn = void (*)();
struct Case {
  const char* name;
  Fn fn;
};
std::vector<Case>& registry();
struct Register {
  Register(const char* name, Fn fn) { registry().push_back({name, fn}); }
};
#define EMU_CASE(name)                                         \
  static void name();                                          \
  static ::emu_test::Register register_##name(#name, &name);  \
  static void name()

// The generator of the running case (seeded per case from the run's seed, printed on failure).
std::mt19937_64& rng();
uint64_t run_seed();

// Failure bookkeeping: a check records the first few mismatches of the running case.
void fail_at(const char* file, int line, const std::string& what);
int failures();
#define EMU_CHECK(cond, what)                                                       \
  do {                                                                              \
    if (!(cond)) ::emu_test::fail_at(__FILE__, __LINE__, std::string(#cond) + ": " + (what)); \
  } while (0)

inline std::vector<float> uniform(size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng());
  return v;
}
inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = alexnet::bf16::from_float(v[i]);
  return out;
}
inline std::vector<float> from_bf16(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = alexnet::bf16::to_float(v[i]);
  return out;
}
inline int64_t randint(int64_t lo, int64_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}

// Elementwise: |got - want| <= atol + rtol * |want|, NaN only where want is NaN. Reports the
// first mismatches with their index.
void expect_close(const char* what, const float* got, const double* want, size_t n, double atol, double rtol);
inline void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want,
                         double atol, double rtol) {
  EMU_CHECK(got.size() == want.size(), what);
  expect_close(what, got.data(), want.data(), std::min(got.size(), want.size()), atol, rtol);
}
// Equal values (+0 == -0; NaN only where want is NaN).
void expect_same(const char* what, const float* got, const float* want, size_t n);
// Bit for bit (+0 and -0 apart). NaNs: any NaN matches any NaN (Nan::Any), or their patterns
// must match too (Nan::Exact: sign and payload, for code that only moves bits).
enum class Nan { Any, Exact };
void expect_same_bits(const std::string& what, const uint16_t* got, const uint16_t* want, size_t n, Nan nan = Nan::Any);
void expect_same_bits(const std::string& what, const float* got, const float* want, size_t n, Nan nan = Nan::Any);

}  // namespace emu_test
