// Tensor storage: a reference-counted buffer on one device, viewed through a contiguous
// (row-major) shape of rank 0..4 and an element offset. Views share storage; the storage
// lives until the last view *and* the last queued task using it are gone.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

// The floats of one derived entry, 64-byte aligned and not initialised: the derivation writes
// every one, from the pool's threads, so the pages of a large entry (fc6's panels are 151 MB)
// are faulted in by those threads in parallel, not zeroed first by one (std::vector did that:
// about half of the panels' making time).
class DerivedBuffer {
 public:
  DerivedBuffer() = default;
  ~DerivedBuffer() { std::free(p_); }
  DerivedBuffer(DerivedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DerivedBuffer& operator=(DerivedBuffer&&) = delete;
  bool allocate(int64_t n);  // false (and empty) when there is no memory
  void release() noexcept { std::free(p_), p_ = nullptr, n_ = 0; }
  bool empty() const { return p_ == nullptr; }
  int64_t size() const { return n_; }
  float* data() const { return p_; }

 private:
  float* p_ = nullptr;
  int64_t n_ = 0;
};

// Data a kernel derives from a tensor's values and keeps between calls (weights packed into
// its tile layout, Winograd filter transforms), held by the tensor's storage and freed with it.
// An entry is current while the storage's version is the one it was made at; every writable
// access to the storage (Storage::data(), hence Tensor::ptr() / f32(), which every operator
// that writes a tensor goes through: fill, copy, SGD step, uploads, collectives, kernels' outputs)
// moves the version on, so no write path can leave a stale entry behind. A read-only access
// (cdata(), Tensor::cptr() / cf32()) leaves it. All entries of all storages together stay under
// derived_cache_budget() bytes; past it (or with the cache off) get() returns null and the
// caller computes into its own scratch as it did before the cache.
class DerivedCache {
 public:
  using Key = std::array<int64_t, 8>;
  DerivedCache() = default;
  ~DerivedCache();
  DerivedCache(const DerivedCache&) = delete;
  DerivedCache& operator=(const DerivedCache&) = delete;
  // The entry for `key`, n floats: returned as it is if it was made at `version`, else
  // (re)filled by fill(entry) first. Null when the cache is off or the budget is spent.
  // With `second_use`, an entry is only made (filled) on the second call at one version: the
  // first notes the version and returns null. For derivations that cost more than they save
  // once (a linear layer's packed weights), so that a training loop, which writes the weights
  // between calls, never pays for them while inference does from its second call on. That
  // first call also frees an entry made at an older version: a training loop does not hold
  // the panels an evaluation made (fc6 and fc7: 220 MB) until the next evaluation.
  const float* get(const Key& key, int64_t n, uint64_t version,
                   const std::function<void(float*)>& fill, bool second_use = false);

 private:
  struct Entry {
    Key key;
    int64_t n;
    uint64_t version;  // of the values in data (kNever: not filled)
    uint64_t seen;     // the version a second_use call last asked at
    DerivedBuffer data;       // empty until first filled
  };
  std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// The derived cache's switch (on by default; off: every call derives again, as before) and its
// budget for all storages together (ALEXNET_DERIVED_CACHE_MB at load, default 512 MiB).
void set_derived_cache_enabled(bool on);
bool derived_cache_enabled();
int64_t derived_cache_budget();
int64_t derived_cache_bytes();  // held by all entries now

// A device buffer. Allocation failure throws ERR_OUT_OF_MEMORY with the size asked for.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  // Writable access: every call counts as a write and moves version() on (DerivedCache).
  void* data() const {
    version_.fetch_add(1, std::memory_order_acq_rel);
    return data_;
  }
  // Read-only access: the version stays.
  const void* cdata() const { return data_; }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  DerivedCache& derived() const { return derived_; }
  // Which storage, at which of its versions, this storage's values were last converted from
  // (the bfloat16 copy of the float32 weights under precision 'bf16'; record_copy below).
  struct CopyRecord {
    std::weak_ptr<Storage> source;
    uint64_t version = 0;
  };
  CopyRecord copy_record() const {
    std::lock_guard<std::mutex> lock(copy_mu_);
    return copy_;
  }
  void set_copy_record(CopyRecord r) const {
    std::lock_guard<std::mutex> lock(copy_mu_);
    copy_ = std::move(r);
  }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  mutable std::atomic<uint64_t> version_{0};
  mutable DerivedCache derived_;
  mutable std::mutex copy_mu_;
  mutable CopyRecord copy_;
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
  // Read-only pointers: unlike ptr(), they do not count as a write (Storage::data()), so data
  // derived from the values and cached (derived()) stays current.
  template <typename T>
  const T* cptr() const {
    return reinterpret_cast<const T*>(static_cast<const char*>(storage_->cdata()) +
                                      static_cast<size_t>(offset_) * dtype_size(dtype_));
  }
  const float* cf32() const { return cptr<float>(); }

  // n floats derived from this view's values by fill(buffer), kept with the storage until its
  // next write (DerivedCache); `key` names the layout (the view's offset and size are added).
  // Null when the cache is off or full: the caller derives into a buffer of its own.
  // With `second_use`, made only on the second call at one version of the values
  // (DerivedCache::get): null on the first.
  const float* derived(const std::array<int64_t, 6>& key, int64_t n,
                       const std::function<void(float*)>& fill, bool second_use = false) const;

  // A contiguous view of numel(shape) elements starting `offset` elements into this tensor.
  Tensor view(int64_t offset, const Shape& shape) const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::Float32;
  int64_t offset_ = 0;
};

// A converted copy kept beside its source, whole buffer for whole buffer (the bfloat16 copy of a
// parameter store's float32 weights): record_copy(copy, source), called on the device's queue
// right after `copy` was written from `source`, notes source's storage and its version then;
// copy_is_current(copy, source) is true while that storage has had no writable access since
// (Storage::data() moves the version on at every one: SGD steps, loads, copies, fills). Only
// views that cover their whole storages are recorded; for any other pair copy_is_current is
// false, so the caller converts again (never a stale copy).
void record_copy(const Tensor& copy, const Tensor& source);
bool copy_is_current(const Tensor& copy, const Tensor& source);

}  // namespace alexnet
