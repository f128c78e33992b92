// Tensor storage: a reference-counted buffer on one device, viewed through a contiguous
// (row-major) shape of rank 0..4 and an element offset. Views share storage; the storage
// lives until the last view *and* the last queued task using it are gone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "error.h"

namespace alexnet {

// BFloat16: 16-bit brain float (float32's top half; conversions in native/core/bf16.h).
// Adding a dtype: every operator checks the dtypes it takes (native/core/check.h), so the
// new one is refused with ERR_DTYPE wherever no kernel for it exists.
enum class DType : int32_t { Float32 = 0, Int32 = 1, BFloat16 = 2 };
const char* dtype_name(DType d);
DType parse_dtype(const std::string& name);  // throws ERR_DTYPE
size_t dtype_size(DType d);

enum class DeviceType : int32_t { Cpu = 0, Cuda = 1 };
struct Device {
  DeviceType type = DeviceType::Cpu;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;                    // "cpu", "cuda:0"
  static Device parse(const std::string& s);  // throws ERR_DEVICE
};

constexpr int kMaxRank = 4;

// The most elements one tensor may have: what a JS typed array can hold (V8's
// TypedArray::kMaxLength on 64-bit Node 20, 2^32; later V8s allow more), so that data() can
// always return the values. 16 GiB of float32, far beyond any tensor this library needs. The
// same bound applies to the product of a shape's non-zero dimensions, so that an empty
// tensor such as [2^31, 2^31, 0] cannot make an operator loop 2^62 times over nothing.
constexpr int64_t kMaxNumel = int64_t{1} << 32;

struct Shape {
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{};  // unused tail is 0
  int64_t operator[](int i) const { return dims[static_cast<size_t>(i)]; }
  // The product of the dimensions, saturating at INT64_MAX (never wraps: a saturated count is
  // beyond kMaxNumel, so every size check rejects it).
  int64_t numel() const;
  std::string str() const;  // "[16, 3, 227, 227]"
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  static Shape of(std::initializer_list<int64_t> d);
};

// Throws ERR_SHAPE naming `op` unless every dimension is >= 0 and both the element count and
// the product of the non-zero dimensions are at most kMaxNumel (overflow-safe).
void check_shape_size(const Shape& s, const char* op);

// A device buffer. Allocation failure throws ERR_OUT_OF_MEMORY with the size asked for.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Storage> storage, Shape shape, DType dtype, int64_t offset = 0);
  static Tensor empty(const Shape& shape, DType dtype, Device device);

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank; }
  int64_t size(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_->device(); }
  int64_t offset() const { return offset_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  bool defined() const { return storage_ != nullptr; }

  // Raw element pointer (valid only inside a task running on this tensor's queue, or after
  // synchronizing it).
  template <typename T>
  T* ptr() const {
    return reinterpret_cast<T*>(static_cast<char*>(storage_->data()) +
                                static_cast<size_t>(offset_) * dtype_size(dtype_));
  }
  float* f32() const { return ptr<float>(); }
  int32_t* i32() const { return ptr<int32_t>(); }
  uint16_t* bf16() const { return ptr<uint16_t>(); }  // raw bfloat16 patterns

  // A contiguous view of numel(shape) elements starting `offset` elements into this tensor.
  Tensor view(int64_t offset, const Shape& shape) const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::Float32;
  int64_t offset_ = 0;
};

}  // namespace alexnet
