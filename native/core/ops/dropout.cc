#include "dropout.h"

#include "../error.h"
#include "../rng.h"

namespace alexnet {

DropoutParams dropout_params(const char* op, double p) {
  if (!(p >= 0.0 && p < 1.0)) fail(code::kArgument, op, ": p must be in [0, 1) but got ", p);
  DropoutParams d;
  d.p = p;
  d.threshold = dropout_threshold(p);
  d.scale = dropout_scale(p);
  return d;
}

}  // namespace alexnet
