// The machine's floating-point peak, measured: a loop of independent multiply-adds per
// instruction set, run on every thread of the pool at once. The benchmarks report their
// FLOP rates as a fraction of it (beside the fraction of OpenBLAS's sgemm), so "how far from
// the hardware" does not depend on how good one BLAS library is on this CPU.
#pragma once

#include <cstdint>
#include <vector>

namespace alexnet::cpu {

enum class PeakIsa { Avx512, Avx2, Sse, Scalar };

struct PeakResult {
  PeakIsa isa;
  const char* name;   // "avx512f", "avx2+fma", "sse", "scalar"
  int lanes;          // floats per instruction
  bool fused;         // a fused multiply-add instruction (else a multiply and an add)
  int threads;        // pool threads that ran the loop at once
  double seconds;     // timed window (after a short warm-up)
  double gflops;      // 2 FLOP per lane per multiply-add, all threads together
};

// The instruction sets this CPU (and this build) can run, best first; Scalar is always there.
std::vector<PeakIsa> peak_isas();

// Runs the loop for `isa` on every pool thread for `seconds` (plus a warm-up of a tenth of it,
// at least 5 ms, which brings the wide units up to speed) and returns the aggregate rate.
// `isa` must be one of peak_isas(). Blocks the calling thread for the whole time.
PeakResult fma_peak(PeakIsa isa, double seconds);

}  // namespace alexnet::cpu
