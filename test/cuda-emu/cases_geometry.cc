// The launch geometry every launcher computes, at the shapes of real training and beyond (a
// dry run: launches are validated as a GPU would, not run). A grid dimension over the hardware's
// limits (grid y/z over 65535, a block over 1024 threads, an empty grid) would fail the launch
// on the GPU with cudaErrorInvalidConfiguration; small test shapes never reach those limits.
#include <stdexcept>
#include <string>

#include "../../native/cuda/ops.h"
#include "harness.h"
#include "include/emu.h"

namespace {

using namespace emu_test;
namespace cu = alexnet::cuda;

// Placeholder addresses: a dry run dereferences nothing.
template <typename T>
T* fake() {
  return reinterpret_cast<T*>(uintptr_t{1} << 40);
}

alexnet::Pool2dParams pool(int64_t N, int64_t C, int64_t H, int64_t k, int64_t s, bool channels_last) {
  alexnet::Pool2dParams p;
  p.N = N;
  p.C = C;
  p.H = p.W = H;
  p.kH = p.kW = k;
  p.sH = p.sW = s;
  p.Ho = p.Wo = (H - k) / s + 1;
  p.channels_last = channels_last;
  return p;
}

struct Act {
  int64_t C, S;  // an activation [B, C, S]
};
// AlexNet's activations after each layer (S = H*W; S = 1 for the classifier).
const Act kAlexNet[] = {{3, 227 * 227}, {96, 55 * 55}, {96, 27 * 27}, {256, 27 * 27}, {256, 13 * 13},
                        {384, 13 * 13}, {256, 6 * 6},  {4096, 1},     {1000, 1}};

EMU_CASE(launch_geometry_at_scale) {
  emu::set_dry_run(true);
  const uint64_t refused0 = emu::launches_refused(), accepted0 = emu::launches_accepted();
  int calls = 0;
  auto note = [&](const std::string& what) {
    ++calls;
    if (emu::launches_refused() != refused0) {
      EMU_CHECK(false, "a launch was refused: " + what);
      emu::set_dry_run(false);
      throw std::runtime_error("stopping at the first refused launch");
    }
  };
  try {
    for (int64_t B : {int64_t{1}, int64_t{256}, int64_t{4096}, int64_t{70000}}) {
      for (const Act& a : kAlexNet) {
        const int64_t n = B * a.C * a.S;
        const std::string at = " B " + std::to_string(B) + " C " + std::to_string(a.C) + " S " + std::to_string(a.S);
        cu::relu_forward(0, fake<float>(), fake<float>(), n);
        cu::relu_backward_bf16(0, fake<uint16_t>(), fake<uint16_t>(), fake<uint16_t>(), n);
        note("relu" + at);
        cu::bias_relu_forward(0, fake<float>(), fake<float>(), B, a.C, a.S, true);
        note("bias_relu_forward" + at);
        cu::bias_relu_bf16(0, fake<uint16_t>(), fake<float>(), B, a.C, a.S, true);
        note("bias_relu_bf16" + at);
        cu::bias_backward(0, fake<float>(), fake<float>(), B, a.C, a.S, true, fake<float>());
        note("bias_backward" + at);
        cu::nchw_to_nhwc(0, fake<float>(), fake<float>(), B, a.C, a.S);
        cu::nhwc_to_nchw(0, fake<float>(), fake<float>(), B, a.C, a.S, true);
        cu::nchw_to_nhwc_bf16(0, fake<uint16_t>(), fake<uint16_t>(), B, a.C, a.S);
        cu::nhwc_to_nchw_bf16(0, fake<uint16_t>(), fake<uint16_t>(), B, a.C, a.S);
        note("layout" + at);
        cu::float_to_bf16(0, fake<uint16_t>(), fake<float>(), n);
        cu::bf16_to_float(0, fake<float>(), fake<uint16_t>(), n);
        note("convert" + at);
        alexnet::DropoutParams d;
        d.p = 0.4;
        d.advance = static_cast<uint64_t>(n);
        cu::dropout_forward(0, fake<float>(), fake<float>(), fake<float>(), n, fake<int32_t>(), d);
        cu::dropout_forward_bf16(0, fake<uint16_t>(), fake<float>(), fake<uint16_t>(), n, nullptr, d);
        cu::dropout_backward(0, fake<float>(), fake<float>(), fake<float>(), n);
        note("dropout" + at);
        if (a.S == 1) {
          cu::bias_to_bf16(0, fake<uint16_t>(), fake<float>(), fake<float>(), B, a.C);
          cu::bias_backward_bf16(0, fake<float>(), fake<uint16_t>(), B, a.C, true);
          note("bf16 linear epilogues" + at);
          cu::softmax_forward(0, fake<float>(), fake<float>(), B, a.C);
          cu::softmax_cross_entropy(0, fake<float>(), fake<float>(), fake<float>(), fake<int32_t>(), B, a.C,
                                    fake<float>(), fake<alexnet::DeviceErrorRecord>());
          note("softmax" + at);
          cu::topk_correct(0, fake<int32_t>(), fake<float>(), fake<int32_t>(), B, a.C, 5,
                           fake<alexnet::DeviceErrorRecord>());
          note("topk" + at);
        }
      }
      for (bool cl : {false, true}) {
        for (const alexnet::Pool2dParams& p : {pool(B, 96, 55, 3, 2, cl), pool(B, 256, 27, 3, 2, cl), pool(B, 256, 13, 3, 2, cl)}) {
          cu::max_pool2d_forward_bf16(0, fake<uint16_t>(), fake<uint16_t>(), p);
          cu::max_pool2d_backward_bf16(0, fake<uint16_t>(), fake<uint16_t>(), fake<uint16_t>(), p);
          if (cl) {
            cu::max_pool2d_forward_f32(0, fake<float>(), fake<float>(), p);
            cu::max_pool2d_backward_f32(0, fake<float>(), fake<float>(), fake<float>(), p);
          }
          note("max_pool2d B " + std::to_string(B) + " C " + std::to_string(p.C));
        }
      }
      alexnet::PixelLut lut{};
      cu::normalize_images(0, fake<float>(), fake<uint8_t>(), B, 3, 227 * 227, lut);
      note("normalize_images B " + std::to_string(B));
    }
    // The parameters: all of AlexNet's 62 million, and more than 2^32 elements.
    for (int64_t n : {int64_t{62378344}, (int64_t{1} << 32) + 5}) {
      alexnet::SgdParams p;
      p.lr = 0.01;
      p.momentum = 0.9;
      p.weight_decay = 5e-4;
      cu::sgd_step(0, fake<float>(), fake<float>(), fake<float>(), fake<uint16_t>(), fake<double>(), n, p);
      cu::fill(0, fake<float>(), 0.f, n);
      cu::axpy(0, fake<float>(), 1.f, fake<float>(), n);
      note("sgd / fill / axpy n " + std::to_string(n));
    }
    // One very long row of classes, and a very wide bias.
    cu::softmax_cross_entropy(0, fake<float>(), fake<float>(), fake<float>(), fake<int32_t>(), 3, int64_t{1} << 31,
                              fake<float>(), fake<alexnet::DeviceErrorRecord>());
    note("softmax_cross_entropy C 2^31");
    cu::bias_backward(0, fake<float>(), fake<float>(), 2, int64_t{1} << 20, 9, false, fake<float>());
    note("bias_backward C 2^20");
  } catch (const std::exception& e) {
    emu::set_dry_run(false);
    EMU_CHECK(false, std::string("threw: ") + e.what());
    return;
  }
  emu::set_dry_run(false);
  EMU_CHECK(emu::launches_accepted() - accepted0 >= static_cast<uint64_t>(calls),
            "fewer launches than launcher calls: the dry run did not reach the kernels");
}

}  // namespace
