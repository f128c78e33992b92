// fmaPeak({seconds, isa}) -> Promise of rows {isa, lanes, fused, threads, seconds, gflops}: the
// machine's multiply-add peak per instruction set (native/cpu/peak.h), the ceiling the
// benchmarks' "of FMA peak" fractions use. It keeps every pool thread busy for its whole
// window, so it runs on the CPU queue's worker, in order with the other CPU work (nothing else
// of ours runs on the CPU meanwhile), and the JS thread never waits.
#include <memory>
#include <string>
#include <vector>

#include "../cpu/isa.h"
#include "../cpu/peak.h"
#include "common.h"

namespace alexnet::binding {

namespace {

const char* kIsaNames = "'all', 'best', 'avx512f', 'avx2+fma', 'sse' or 'scalar'";

// The instruction sets asked for: `all` (the default) or `best` of those the CPU has, or one by
// name, which must be among them.
std::vector<cpu::PeakIsa> isas_for(const std::string& isa, const char* op) {
  const std::vector<cpu::PeakIsa> have = cpu::peak_isas();
  if (isa == "all") return have;
  if (isa == "best") {
    // the best the kernels may use: under an AVX2 cap (isa.h), AVX2 + FMA
    if (cpu::simd_level() != cpu::SimdLevel::Avx512)
      for (cpu::PeakIsa h : have)
        if (h != cpu::PeakIsa::Avx512) return {h};
    return {have.front()};
  }
  const std::pair<const char*, cpu::PeakIsa> names[] = {{"avx512f", cpu::PeakIsa::Avx512},
                                                        {"avx2+fma", cpu::PeakIsa::Avx2},
                                                        {"sse", cpu::PeakIsa::Sse},
                                                        {"scalar", cpu::PeakIsa::Scalar}};
  for (const auto& [name, value] : names) {
    if (isa != name) continue;
    for (cpu::PeakIsa h : have)
      if (h == value) return {value};
    fail(code::kArgument, op, ": isa '", isa, "' is not supported by this CPU");
  }
  fail(code::kArgument, op, ": isa must be ", kIsaNames, ", got ", quoted(isa));
}

Napi::Value rows_to_js(Napi::Env env, const std::vector<cpu::PeakResult>& rows) {
  Napi::Array out = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const cpu::PeakResult& r = rows[i];
    Napi::Object row = Napi::Object::New(env);
    row.Set("isa", r.name);
    row.Set("lanes", r.lanes);
    row.Set("fused", r.fused);
    row.Set("threads", r.threads);
    row.Set("seconds", r.seconds);
    row.Set("gflops", r.gflops);
    out.Set(static_cast<uint32_t>(i), row);
  }
  return out;
}

}  // namespace

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  const char* op = "fmaPeak";
  Napi::Env env = info.Env();
  Napi::Object o = options_arg(info, 0, op);
  const double seconds = number_opt(o, "seconds", 0.1, op);
  if (!(seconds >= 0.001 && seconds <= 10)) fail(code::kArgument, op, ": seconds must be in [0.001, 10]");
  const std::vector<cpu::PeakIsa> isas = isas_for(string_opt(o, "isa", "all", op), op);

  return promise_off_thread<std::vector<cpu::PeakResult>>(
      env, "alexnet.fmaPeak",
      [isas, seconds] {
        std::vector<cpu::PeakResult> rows;
        for (cpu::PeakIsa isa : isas) rows.push_back(cpu::fma_peak(isa, seconds));
        return rows;
      },
      rows_to_js, [](std::function<void()> body) { enqueue(Device{}, std::move(body)); });
}

}  // namespace alexnet::binding
