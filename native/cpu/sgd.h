// SGD with momentum, in place over flat buffers (parameters live in one contiguous store, so
// one call updates all of them). Two conventions, named (see shared/DESIGN.md):
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
// element and rounded once when stored.
#pragma once

#include <cstdint>

namespace alexnet::cpu {

enum class SgdConvention { PyTorch, Krizhevsky };

struct SgdParams {
  double lr = 0;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  SgdConvention convention = SgdConvention::PyTorch;
  bool first_step = false;
};

void sgd_step(float* w,          // [n] parameters, updated in place
              const float* g,    // [n] gradients
              float* buf,        // [n] momentum buffer (b or v), updated in place; null iff momentum == 0
              int64_t n, const SgdParams& params);

}  // namespace alexnet::cpu
