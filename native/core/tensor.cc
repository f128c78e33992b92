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

namespace {
std::atomic<bool> g_derived_on{true};
std::atomic<int64_t> g_derived_bytes{0};
constexpr uint64_t kNever = ~uint64_t{0};  // the version of an entry not (yet) filled
int64_t budget_from_env() {
  const char* v = std::getenv("ALEXNET_DERIVED_CACHE_MB");
  if (v == nullptr || *v == 0) return int64_t{512} << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  // The TypeScript layer refuses anything but [0, 2^20] (src/native.ts, checkEnvironment); a
  // process that loads the addon directly gets the default for garbage and at most 1 TiB (no
  // shift overflow).
  if (end == v || *end != '\0' || mb < 0) return int64_t{512} << 20;
  return static_cast<int64_t>(mb < (1LL << 20) ? mb : (1LL << 20)) << 20;
}
}  // namespace

void set_derived_cache_enabled(bool on) { g_derived_on.store(on); }
bool derived_cache_enabled() { return g_derived_on.load(); }
int64_t derived_cache_budget() {
  static const int64_t budget = budget_from_env();
  return budget;
}
int64_t derived_cache_bytes() { return g_derived_bytes.load(); }

DerivedCache::~DerivedCache() {
  for (const auto& e : entries_) g_derived_bytes.fetch_sub(e->data.size() * static_cast<int64_t>(sizeof(float)));
}

bool DerivedBuffer::allocate(int64_t n) {
  const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
  p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  n_ = p_ != nullptr ? n : 0;
  return p_ != nullptr;
}

const float* DerivedCache::get(const Key& key, int64_t n, uint64_t version,
                               const std::function<void(float*)>& fill, bool second_use) {
  if (!derived_cache_enabled() || n <= 0) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  Entry* entry = nullptr;
  for (const auto& e : entries_)
    if (e->key == key && e->n == n) entry = e.get();
  if (entry != nullptr && entry->version == version) return entry->data.data();
  if (entry == nullptr) {
    try {
      entries_.push_back(std::make_unique<Entry>(Entry{key, n, kNever, kNever, {}}));
    } catch (...) {
      return nullptr;  // no memory for the cache: the caller derives into its scratch
    }
    entry = entries_.back().get();
  }
  if (second_use && entry->seen != version) {  // the first call at this version: noted only
    entry->seen = version;
    if (!entry->data.empty()) {  // and a stale entry freed, not held through training
      g_derived_bytes.fetch_sub(entry->data.size() * static_cast<int64_t>(sizeof(float)));
      entry->data.release();
      entry->version = kNever;
    }
    return nullptr;
  }
  if (entry->data.empty()) {
    const int64_t bytes = n * static_cast<int64_t>(sizeof(float));
    if (g_derived_bytes.fetch_add(bytes) + bytes > derived_cache_budget()) {
      g_derived_bytes.fetch_sub(bytes);
      return nullptr;
    }
    count_allocation(Device{});  // derived entries are the CPU kernels' (weights in host memory)
    if (!entry->data.allocate(n)) {
      g_derived_bytes.fetch_sub(bytes);
      return nullptr;
    }
  }
  entry->version = kNever;  // until filled (fill may throw)
  fill(entry->data.data());
  entry->version = version;
  return entry->data.data();
}

const float* Tensor::derived(const std::array<int64_t, 6>& key, int64_t n,
                             const std::function<void(float*)>& fill, bool second_use) const {
  // The version before the values are read: a write after it leaves the entry stale.
  const uint64_t version = storage_->version();
  const DerivedCache::Key full{offset_, numel(), key[0], key[1], key[2], key[3], key[4], key[5]};
  return storage_->derived().get(full, n, version, fill, second_use);
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

namespace {
bool whole(const Tensor& t) { return t.defined() && t.offset() == 0 && t.nbytes() == t.storage()->bytes(); }
}  // namespace

void record_copy(const Tensor& copy, const Tensor& source) {
  if (!whole(copy) || !whole(source) || copy.numel() != source.numel()) {
    if (copy.defined()) copy.storage()->set_copy_record({});
    return;
  }
  copy.storage()->set_copy_record({source.storage(), source.storage()->version()});
}

bool copy_is_current(const Tensor& copy, const Tensor& source) {
  if (!whole(copy) || !whole(source) || copy.numel() != source.numel()) return false;
  const Storage::CopyRecord r = copy.storage()->copy_record();
  return r.source.lock() == source.storage() && r.version == source.storage()->version();
}

}  // namespace alexnet
