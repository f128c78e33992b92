// SGD with momentum: THE statement of the update rules, for every backend (the CPU loop in
// native/cpu/sgd.cc, the CUDA kernel in native/cuda/kernels/sgd.cu) and the binding
// (native/binding/sgd.cc, which parses the options into SgdParams). Parameters live in one
// contiguous store, so one call updates all of them, in place over flat buffers.
//
// Two conventions, named (docs/architecture.md, "SGD with momentum: two conventions"):
//
// PyTorch (torch.optim.SGD), the default:
//   g' = g + wd * w
//   if momentum != 0:
//     b = firstStep ? g' : momentum * b + (1 - dampening) * g'
//     g' = nesterov ? g' + momentum * b : b
//   w = w - lr * g'
//
// Krizhevsky et al. 2012 ("v <- 0.9 v - 0.0005 lr w - lr g; w <- w + v"):
//   g' = g + wd * w
//   if momentum != 0:
//     v = momentum * (firstStep ? 0 : v) - lr * (1 - dampening) * g'
//     w = w + v
//   else:
//     w = w - lr * g'
//
// With a constant lr and no dampening the two agree (v = -lr * b); they differ once lr changes
// (PyTorch's buffer holds gradients, Krizhevsky's holds steps already scaled by the old lr).
// With momentum == 0 both are plain SGD: the buffer is neither read nor written (it may be
// null) and dampening has no effect, as in PyTorch. Nesterov is defined for PyTorch's
// convention only (and needs momentum > 0, dampening == 0). Arithmetic is done in double per
// element and rounded once when stored, on every backend.
//
// The learning rate in device memory (issue 14): sgdStep may take lr as a tensor, int32 [2]
// holding the bits of a double (little-endian, as a Float64Array's buffer read as an
// Int32Array), on the parameters' device. The kernel reads it when it runs, so a step queued
// once (a captured CUDA graph, replayed) follows every later write of the tensor; a double's
// bits, not a float32, so the update is exactly the one with the number lr.
#pragma once

namespace alexnet {

enum class SgdConvention { PyTorch, Krizhevsky };

// Plain data (it is passed by value to the CUDA kernel).
struct SgdParams {
  double lr = 0;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  SgdConvention convention = SgdConvention::PyTorch;
  bool first_step = false;
};

// Throws ERR_ARGUMENT naming `op` and the option when the values break the rules above:
// lr, momentum, weightDecay >= 0; dampening in [0, 1]; nesterov only for the PyTorch
// convention, with momentum > 0 and no dampening.
void check_sgd_params(const char* op, const SgdParams& p);

}  // namespace alexnet
