// Emulated checks of metrics.cu (top-k counts, the label check and its error record) and
// image.cu (8-bit planes through the per-channel lookup table).
#include <climits>
#include <limits>

#include "../../native/cuda/ops.h"
#include "harness.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;

// Logits with ties (a few distinct values), NaNs here and there, some on the label.
std::vector<float> logits(int64_t B, int64_t C, bool ties) {
  std::vector<float> z = uniform(B * C, -4.f, 4.f);
  for (float& v : z) {
    if (ties) v = static_cast<float>(randint(-2, 2));
    if (randint(0, 30) == 0) v = std::numeric_limits<float>::quiet_NaN();
  }
  return z;
}
std::vector<int32_t> labels(int64_t B, int64_t C) {
  std::vector<int32_t> y(B);
  for (int32_t& v : y) v = static_cast<int32_t>(randint(0, C - 1));
  return y;
}

// A row is correct when its label logit is not NaN and fewer than k logits are greater (NaN counts as greater).
int32_t want_correct(const std::vector<float>& z, const std::vector<int32_t>& y, int64_t B, int64_t C, int64_t k) {
  int32_t correct = 0;
  for (int64_t b = 0; b < B; ++b) {
    const float t = z[b * C + y[b]];
    if (t != t) continue;
    int64_t above = 0;
    for (int64_t c = 0; c < C; ++c) {
      const float v = z[b * C + c];
      if (v != v || v > t) ++above;
    }
    if (above < k) ++correct;
  }
  return correct;
}

const alexnet::DeviceErrorRecord kUntouched{0, 77, 88, 99, 111};
bool same_record(const alexnet::DeviceErrorRecord& a, const alexnet::DeviceErrorRecord& b) {
  return a.status == b.status && a.op == b.op && a.row == b.row && a.label == b.label && a.classes == b.classes;
}
std::string show(const alexnet::DeviceErrorRecord& r) {
  return "{status " + std::to_string(r.status) + ", op " + std::to_string(r.op) + ", row " + std::to_string(r.row) +
         ", label " + std::to_string(r.label) + ", classes " + std::to_string(r.classes) + "}";
}

EMU_CASE(topk_correct_counts) {
  // few launches (each spawns its block's threads, slow under TSan): k 1, and one k in [2, C + 1]
  // for the larger shapes
  const struct {
    int64_t B, C;
    bool ties;
  } shapes[] = {{1, 1, false}, {7, 3, true}, {257, 37, false}, {3001, 4, true}};
  int checked_nonzero = 0;
  for (const auto& s : shapes) {
    const int64_t B = s.B, C = s.C;
    const std::vector<float> z = logits(B, C, s.ties);
    const std::vector<int32_t> y = labels(B, C);
    std::vector<int64_t> ks{1};
    if (B > 100) ks.push_back(randint(2, C + 1));  // k >= C: every row whose label logit is a number
    for (int64_t k : ks) {
      int32_t correct = 12345;
      alexnet::DeviceErrorRecord record = kUntouched;
      cu::topk_correct(0, &correct, z.data(), y.data(), B, C, k, &record);
      const int32_t want = want_correct(z, y, B, C, k);
      checked_nonzero += want > 0;
      EMU_CHECK(correct == want, "B " + std::to_string(B) + " C " + std::to_string(C) + " k " + std::to_string(k) +
                                     (s.ties ? " ties" : "") + ": " + std::to_string(correct) + ", want " +
                                     std::to_string(want));
      EMU_CHECK(same_record(record, kUntouched), "valid labels touched the record: " + show(record));
    }
  }
  EMU_CHECK(checked_nonzero >= 4, "too few nonzero counts to mean anything");
  // B == 0: a count of 0, no kernel
  int32_t correct = 5;
  alexnet::DeviceErrorRecord record = kUntouched;
  cu::topk_correct(0, &correct, nullptr, nullptr, 0, 10, 1, &record);
  EMU_CHECK(correct == 0, "B == 0 count " + std::to_string(correct));
  EMU_CHECK(same_record(record, kUntouched), "B == 0 touched the record");
}

// Labels outside [0, C): correct becomes -1 and a clear record takes the lowest bad row; a
// record already set (an earlier operator's error) is left as it is.
EMU_CASE(topk_correct_bad_labels) {
  const int64_t shapes[][2] = {{1, 4}, {257, 7}, {3001, 5}};
  const int32_t bad_values[] = {-1, INT_MIN, INT_MAX};
  for (const auto& s : shapes) {
    const int64_t B = s[0], C = s[1];
    const std::vector<float> z = logits(B, C, false);
    std::vector<int32_t> y = labels(B, C);
    // a few bad rows, anywhere (the lowest may sit in any thread's share)
    int64_t lowest = B;
    const int bad_rows = static_cast<int>(randint(1, 4));
    for (int r = 0; r < bad_rows; ++r) {
      const int64_t row = randint(0, B - 1);
      const int64_t which = randint(0, 3);
      y[row] = which == 3 ? static_cast<int32_t>(C + randint(0, 5)) : bad_values[which];
      lowest = std::min(lowest, row);
    }
    int32_t correct = 12345;
    alexnet::DeviceErrorRecord record{0, 0, 0, 0, 0};
    cu::topk_correct(0, &correct, z.data(), y.data(), B, C, randint(1, C), &record);
    EMU_CHECK(correct == -1, "count with a bad label: " + std::to_string(correct));
    const alexnet::DeviceErrorRecord want{1, static_cast<int32_t>(alexnet::DeviceErrorOp::TopkCorrectLabel), lowest,
                                          y[lowest], C};
    EMU_CHECK(same_record(record, want), "record " + show(record) + ", want " + show(want));

    // the record already holds an error: kept; the count is still -1
    alexnet::DeviceErrorRecord held{1, 1, 3, -7, 1000};
    const alexnet::DeviceErrorRecord before = held;
    correct = 12345;
    cu::topk_correct(0, &correct, z.data(), y.data(), B, C, 1, &held);
    EMU_CHECK(correct == -1, "count with a bad label (record held): " + std::to_string(correct));
    EMU_CHECK(same_record(held, before), "a held record was overwritten: " + show(held));
  }
}

alexnet::PixelLut random_lut() {
  alexnet::PixelLut lut;
  for (auto& row : lut.v)
    for (float& v : row) v = uniform(1, -3.f, 3.f)[0];
  return lut;
}

EMU_CASE(normalize_images_lut) {
  // planes around the block size, odd ones, and one over 64 blocks' worth (the grid-stride loop)
  const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 7}, {3, 1, 255}, {1, 3, 257}, {2, 2, 1000}, {1, 1, 16411}};
  for (const auto& s : shapes) {
    const int64_t N = s[0], C = s[1], HW = s[2];
    const alexnet::PixelLut lut = random_lut();
    std::vector<uint8_t> x(N * C * HW);
    for (uint8_t& v : x) v = static_cast<uint8_t>(randint(0, 255));
    std::vector<float> y(N * C * HW, std::numeric_limits<float>::quiet_NaN());
    cu::normalize_images(0, y.data(), x.data(), N, C, HW, lut);
    std::vector<float> want(y.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < HW; ++p) {
          const int64_t at = (n * C + c) * HW + p;
          want[at] = lut.v[c][x[at]];
        }
    expect_same(("normalize N " + std::to_string(N) + " C " + std::to_string(C) + " HW " + std::to_string(HW)).c_str(),
                y.data(), want.data(), y.size());
  }
  cu::normalize_images(0, nullptr, nullptr, 0, 3, 100, random_lut());
  cu::normalize_images(0, nullptr, nullptr, 2, 3, 0, random_lut());
}

}  // namespace
