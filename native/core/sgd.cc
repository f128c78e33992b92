#include "sgd.h"

#include "error.h"

namespace alexnet {

void check_sgd_params(const char* op, const SgdParams& p) {
  if (p.lr < 0) fail(code::kArgument, op, ": lr must be >= 0 but got ", p.lr);
  if (p.momentum < 0) fail(code::kArgument, op, ": momentum must be >= 0 but got ", p.momentum);
  if (p.dampening < 0 || p.dampening > 1)
    fail(code::kArgument, op, ": dampening must be in [0, 1] but got ", p.dampening);
  if (p.weight_decay < 0)
    fail(code::kArgument, op, ": weightDecay must be >= 0 but got ", p.weight_decay);
  if (p.nesterov) {
    if (p.convention == SgdConvention::Krizhevsky)
      fail(code::kArgument, op, ": nesterov momentum is not defined for the krizhevsky convention");
    if (p.momentum <= 0 || p.dampening != 0)
      fail(code::kArgument, op, ": nesterov momentum requires momentum > 0 and zero dampening (got momentum ",
           p.momentum, ", dampening ", p.dampening, ")");
  }
}

}  // namespace alexnet
