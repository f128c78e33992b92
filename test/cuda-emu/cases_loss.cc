// Emulated checks of loss.cu (softmax, the fused softmax cross-entropy) and its label check
// (labels.cuh: the device error record) against float64 references written here.
#include <climits>
#include <limits>

#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;
using alexnet::DeviceErrorOp;
using alexnet::DeviceErrorRecord;

// (B, C): every class count (1000 and 1001 wider than a block, 256) with small batches; the
// batch of 130 rows has its own case (softmax_cross_entropy_batch130): the emulator runs blocks
// (one a row) one after another, and every block's reductions cost thousands of thread
// wake-ups, so long batches are taken sparingly.
const std::pair<int64_t, int64_t> kShapes[] = {{1, 2}, {1, 10}, {1, 257}, {1, 1000}, {1, 1001},
                                               {3, 2}, {3, 10}, {3, 257}, {3, 1000}, {3, 1001}};

// Logits: random in [-6, 6], every third row shifted far from 0 (+-90: exp would overflow
// without the max subtracted), so the kernels' numerically stable form is exercised.
std::vector<float> draw_logits(int64_t B, int64_t C) {
  std::vector<float> z = uniform(B * C, -6.f, 6.f);
  for (int64_t b = 0; b < B; ++b) {
    const float shift = b % 3 == 1 ? 90.f : b % 3 == 2 ? -90.f : 0.f;
    for (int64_t c = 0; c < C; ++c) z[b * C + c] += shift;
  }
  return z;
}

struct RowRef {
  double m, sum;  // the row's max, sum of exp(z - m)
};
RowRef row_ref(const float* z, int64_t C) {
  double m = -INFINITY, s = 0;
  for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(z[c]));
  for (int64_t c = 0; c < C; ++c) s += std::exp(z[c] - m);
  return {m, s};
}

// float32 softmax: a few roundings (exp, the reciprocal of the sum, the product, the sum's
// own error), so a relative 1e-5 holds for every probability, however small.
constexpr double kRtol = 1e-5;

EMU_CASE(softmax_forward_rows) {
  for (auto [B, C] : kShapes) {
      const std::vector<float> z = draw_logits(B, C);
      std::vector<float> y = uniform(B * C, 7.f, 8.f);  // stale
      cu::softmax_forward(0, y.data(), z.data(), B, C);
      std::vector<double> want(B * C);
      for (int64_t b = 0; b < B; ++b) {
        const RowRef r = row_ref(&z[b * C], C);
        for (int64_t c = 0; c < C; ++c) want[b * C + c] = std::exp(z[b * C + c] - r.m) / r.sum;
      }
      expect_close(("softmax B" + std::to_string(B) + " C" + std::to_string(C)).c_str(), y, want, 1e-30, kRtol);
  }
  cu::softmax_forward(0, nullptr, nullptr, 0, 10);  // nothing to do, no launch
}

// loss = mean_b(logsumexp(z_b) - z_b[label_b]); grad = (softmax(z) - onehot) / B.
void check_xent(const std::string& what, float loss, const std::vector<float>& grad, const std::vector<float>& z,
                const std::vector<int32_t>& labels, int64_t B, int64_t C) {
  double total = 0, scale = 0;
  std::vector<double> want(B * C);
  for (int64_t b = 0; b < B; ++b) {
    const float* row = &z[b * C];
    const RowRef r = row_ref(row, C);
    const double lse = r.m + std::log(r.sum);
    total += lse - row[labels[b]];
    // the float32 row loss: (m + log s) - z[label], each rounded at the logits' magnitude
    scale = std::max(scale, std::fabs(r.m) + std::fabs(lse) + std::fabs(row[labels[b]]));
    for (int64_t c = 0; c < C; ++c) want[b * C + c] = (std::exp(row[c] - r.m) / r.sum - (c == labels[b])) / B;
  }
  const double want_loss = total / B;
  const double loss_tol = 8 * std::ldexp(scale, -24) + 1e-5 * std::fabs(want_loss);
  EMU_CHECK(std::fabs(loss - want_loss) <= loss_tol,
            what + " loss " + std::to_string(loss) + ", want " + std::to_string(want_loss));
  // The label's entry p - 1 loses p's relative accuracy when p is near 1: an absolute bound of
  // a few ulps of 1 (divided by B) there, the relative one everywhere else.
  int shown = 0;
  for (int64_t i = 0; i < B * C; ++i) {
    const bool label_entry = labels[i / C] == i % C;
    const double tol = label_entry ? 4 * std::ldexp(1.0, -24) / B + kRtol * std::fabs(want[i]) : kRtol * std::fabs(want[i]);
    const bool ok = std::fabs(grad[i] - want[i]) <= tol;
    if (!ok && shown++ < 3) {
      char buf[200];
      std::snprintf(buf, sizeof buf, " grad[%lld] = %.9g, want %.9g", (long long)i, grad[i], want[i]);
      EMU_CHECK(ok, what + buf);
    }
  }
}

std::vector<int32_t> draw_labels(int64_t B, int64_t C) {
  std::vector<int32_t> l(B);
  for (int32_t& v : l) v = static_cast<int32_t>(randint(0, C - 1));
  return l;
}

void run_valid(int64_t B, int64_t C) {
  const std::string what = "B" + std::to_string(B) + " C" + std::to_string(C);
  const std::vector<float> z = draw_logits(B, C);
  const std::vector<int32_t> labels = draw_labels(B, C);
  float loss = 123.f;
  std::vector<float> grad = uniform(B * C, 7.f, 8.f), scratch = uniform(B, 7.f, 8.f);
  DeviceErrorRecord record{};
  cu::softmax_cross_entropy(0, &loss, grad.data(), z.data(), labels.data(), B, C, scratch.data(), &record);
  check_xent(what, loss, grad, z, labels, B, C);
  const DeviceErrorRecord clear{};
  EMU_CHECK(std::memcmp(&record, &clear, sizeof record) == 0, what + ": valid labels touched the error record");
}

// A label outside [0, C): the record gets (status 1, the op, the lowest bad row, its label, C),
// and loss and the whole grad become NaN, as on the CPU. A record already set (preset) keeps
// the first operator's error, but the outputs are still poisoned.
void run_bad(int64_t B, int64_t C, const std::vector<std::pair<int64_t, int32_t>>& bad /*(row, label)*/,
             bool preset) {
  std::vector<int32_t> labels = draw_labels(B, C);
  int64_t first = B;
  for (auto [row, label] : bad) {
    labels[row] = label;
    first = std::min(first, row);
  }
  const std::string what = "B" + std::to_string(B) + " C" + std::to_string(C) + (preset ? " (record set)" : "");
  const std::vector<float> z = draw_logits(B, C);
  float loss = 123.f;
  std::vector<float> grad = uniform(B * C, 7.f, 8.f), scratch = uniform(B, 7.f, 8.f);
  // an earlier operator's error (topk's), waiting for its read
  const DeviceErrorRecord earlier{1, static_cast<int32_t>(DeviceErrorOp::TopkCorrectLabel), 5, -3, 17};
  DeviceErrorRecord record = preset ? earlier : DeviceErrorRecord{};
  cu::softmax_cross_entropy(0, &loss, grad.data(), z.data(), labels.data(), B, C, scratch.data(), &record);
  EMU_CHECK(std::isnan(loss), what + ": loss not NaN");
  int64_t finite = 0;
  for (float g : grad) finite += !std::isnan(g);
  EMU_CHECK(finite == 0, what + ": " + std::to_string(finite) + " grad values not NaN");
  if (preset) {
    EMU_CHECK(std::memcmp(&record, &earlier, sizeof record) == 0, what + ": an earlier error was overwritten");
    return;
  }
  EMU_CHECK(record.status == 1, what + ": status " + std::to_string(record.status));
  EMU_CHECK(record.op == static_cast<int32_t>(DeviceErrorOp::SoftmaxCrossEntropyLabel),
            what + ": op " + std::to_string(record.op));
  EMU_CHECK(record.row == first, what + ": row " + std::to_string(record.row) + ", want " + std::to_string(first));
  EMU_CHECK(record.label == labels[first], what + ": label " + std::to_string(record.label));
  EMU_CHECK(record.classes == C, what + ": classes " + std::to_string(record.classes));
}

EMU_CASE(softmax_cross_entropy_valid) {
  for (auto [B, C] : kShapes) run_valid(B, C);
}

EMU_CASE(softmax_cross_entropy_bad_labels) {
  for (bool preset : {false, true}) {
    run_bad(1, 2, {{0, 2}}, preset);
    run_bad(3, 10, {{2, -1}}, preset);
    run_bad(3, 1001, {{2, 1001}, {1, INT_MIN}}, preset);
    run_bad(3, 257, {{2, 300}, {1, INT_MAX}, {0, 257}}, preset);
  }
  // rows in three warps of the check's block: the lowest (33) wins over the others' finds
  run_bad(70, 2, {{69, 2}, {40, INT_MAX}, {64, 7}, {33, -1}}, false);
}

// Non-finite logits, as the CPU computes them (a NaN is skipped by the max and then poisons its
// row's sum): a NaN makes its row NaN, -inf logits get probability 0 (a -inf label logit: an
// infinite loss), a +inf logit makes its row NaN (inf - inf), a row of -inf is NaN.
EMU_CASE(softmax_nonfinite_logits) {
  const int64_t B = 5, C = 300;
  std::vector<float> z = draw_logits(B, C);
  const float inf = std::numeric_limits<float>::infinity();
  z[0 * C + 17] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t c = 0; c < C; c += 3) z[1 * C + c] = -inf;
  z[2 * C + 299] = inf;
  for (int64_t c = 0; c < C; ++c) z[3 * C + c] = -inf;
  z[4 * C + 5] = -inf;  // row 4: finite but for its label's logit
  std::vector<double> p(B * C);
  for (int64_t b = 0; b < B; ++b) {
    const RowRef r = row_ref(&z[b * C], C);
    for (int64_t c = 0; c < C; ++c) p[b * C + c] = std::exp(z[b * C + c] - r.m) / r.sum;
  }
  std::vector<float> y = uniform(B * C, 7.f, 8.f);
  cu::softmax_forward(0, y.data(), z.data(), B, C);
  expect_close("softmax non-finite", y, p, 1e-30, kRtol);

  // one row at a time: each row's loss and gradient (a NaN row would hide the others in a mean)
  const int32_t labels[B] = {3, 4, 5, 6, 5};
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<float> row(z.begin() + b * C, z.begin() + (b + 1) * C);
    float loss = 123.f;
    std::vector<float> grad = uniform(C, 7.f, 8.f), scratch(1, 7.f);
    DeviceErrorRecord record{};
    cu::softmax_cross_entropy(0, &loss, grad.data(), row.data(), &labels[b], 1, C, scratch.data(), &record);
    const RowRef r = row_ref(row.data(), C);
    const double want_loss = r.m + std::log(r.sum) - row[labels[b]];
    const std::string what = "non-finite row " + std::to_string(b);
    EMU_CHECK(std::isnan(want_loss) ? std::isnan(loss) : (std::isinf(want_loss) ? loss == want_loss
                                                                                 : std::fabs(loss - want_loss) < 1e-4),
              what + " loss " + std::to_string(loss) + ", want " + std::to_string(want_loss));
    std::vector<double> want(C);
    for (int64_t c = 0; c < C; ++c) want[c] = p[b * C + c] - (c == labels[b]);
    expect_close((what + " grad").c_str(), grad, want, 4 * std::ldexp(1.0, -24), kRtol);
    EMU_CHECK(record.status == 0, what + ": error record set");
  }
}

// 130 rows: the mean over more rows than a warp (valid labels; the label check across warps is
// run_bad(70, ...) above, cheaper: every row is a block, and blocks run one after another here).
EMU_CASE(softmax_cross_entropy_batch130) { run_valid(130, 10); }

}  // namespace
