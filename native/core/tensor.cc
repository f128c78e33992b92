#include "tensor.h"

#include <cstdlib>
#include <limits>
#include <new>
#include <sstream>

#include "device.h"

namespace alexnet {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::Float32: return "float32";
    case DType::Int32: return "int32";
    case DType::BFloat16: return "bfloat16";
  }
  return "unknown";
}

DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::Float32;
  if (name == "int32") return DType::Int32;
  if (name == "bfloat16") return DType::BFloat16;
  fail(code::kDtype, "unsupported dtype '", name, "' (expected 'float32', 'int32' or 'bfloat16')");
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::Float32: return 4;
    case DType::Int32: return 4;
    case DType::BFloat16: return 2;
  }
  return 4;
}

std::string Device::str() const {
  if (type == DeviceType::Cpu) return "cpu";
  return "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return Device{DeviceType::Cpu, 0};
  if (s == "cuda") return Device{DeviceType::Cuda, 0};
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9) {
    int index = 0;
    for (size_t i = 5; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') fail(code::kDevice, "unknown device '", s, "'");
      index = index * 10 + (s[i] - '0');
    }
    return Device{DeviceType::Cuda, index};
  }
  fail(code::kDevice, "unknown device '", s, "' (expected 'cpu', 'cuda' or 'cuda:N')");
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    int64_t r = 0;
    if (__builtin_mul_overflow(n, dims[static_cast<size_t>(i)], &r))
      return std::numeric_limits<int64_t>::max();
    n = r;
  }
  return n;
}

void check_shape_size(const Shape& s, const char* op) {
  int64_t nonzero = 1;
  for (int i = 0; i < s.rank; ++i) {
    const int64_t d = s[i];
    if (d < 0) fail(code::kShape, op, ": negative dimension in shape ", s.str());
    if (d == 0) continue;
    if (__builtin_mul_overflow(nonzero, d, &nonzero) || nonzero > kMaxNumel)
      fail(code::kShape, op, ": shape ", s.str(), " is too large (a tensor holds at most ", kMaxNumel,
           " elements, what a JavaScript typed array can hold)");
  }
}

std::string Shape::str() const {
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < rank; ++i) os << (i ? ", " : "") << dims[static_cast<size_t>(i)];
  os << ']';
  return os.str();
}

bool Shape::operator==(const Shape& o) const {
  if (rank != o.rank) return false;
  for (int i = 0; i < rank; ++i)
    if (dims[static_cast<size_t>(i)] != o.dims[static_cast<size_t>(i)]) return false;
  return true;
}

Shape Shape::of(std::initializer_list<int64_t> d) {
  if (d.size() > kMaxRank) fail(code::kShape, "tensors have at most ", kMaxRank, " dimensions");
  Shape s;
  for (int64_t v : d) s.dims[static_cast<size_t>(s.rank++)] = v;
  return s;
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = device_alloc(device, bytes);
}

Storage::~Storage() { device_free(device_, data_, bytes_); }

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, DType dtype, int64_t offset)
    : storage_(std::move(storage)), shape_(shape), dtype_(dtype), offset_(offset) {}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  // Before multiplying into bytes and before asking the allocator: n * 4 cannot overflow.
  check_shape_size(shape, "cannot create a tensor");
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  return Tensor(std::make_shared<Storage>(bytes, device), shape, dtype, 0);
}

Tensor Tensor::view(int64_t offset, const Shape& shape) const {
  check_shape_size(shape, "view");
  // Both terms are at most kMaxNumel here (or offset is rejected first): no overflow.
  if (offset < 0 || offset > numel() || shape.numel() > numel() - offset)
    fail(code::kShape, "view of ", shape.numel(), " elements at offset ", offset,
         " does not fit in a tensor of ", numel(), " elements");
  return Tensor(storage_, shape, dtype_, offset_ + offset);
}

}  // namespace alexnet
