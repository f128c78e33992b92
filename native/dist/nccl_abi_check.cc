// Comparison of our NCCL declarations (native/dist/nccl_api.h) with the real <nccl.h>. NOT part
// of the addon: scripts/check-nccl-abi.sh compiles it with the folders holding nccl.h and CUDA's
// cuda_runtime.h (which nccl.h includes), then runs it.
//   * at compile time: every enumerator of ours equals the header's, each enum has the header's
//     size and underlying type; ncclComm_t and cudaStream_t are the very types of the headers;
//     ncclUniqueId has the header's size and alignment (NCCL_UNIQUE_ID_BYTES); every
//     function-pointer type, with our types mapped onto the real ones position by position, is
//     the type of the real function (std::is_same<mapped PFN, decltype(&::ncclAllReduce)>);
//   * at run time, when ALEXNET_NCCL_ABI_LIBRARY names a libnccl.so.2 (the script passes the
//     one beside the header, where there is one): it loads, exports every function we resolve,
//     and its ncclGetVersion is the header's NCCL_VERSION_CODE. No GPU is needed.
// Prints "abi_item ..." lines and "nccl-abi: OK <n> items", or "MISMATCH ..." and exits 1.
#include "nccl_api.h"

// Captured before <nccl.h> turns the name into a macro.
constexpr int ours_unique_id_bytes = alexnet::dist::nccl::NCCL_UNIQUE_ID_BYTES;

#include <dlfcn.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace ours = alexnet::dist::nccl;

static_assert(NCCL_MAJOR == 2, "these declarations are for NCCL 2 headers");

template <typename T>
struct Map {
  using type = T;
};
template <typename T>
using Map_t = typename Map<T>::type;
template <typename T>
struct Map<T*> {
  using type = Map_t<T>*;
};
template <typename T>
struct Map<const T> {
  using type = const Map_t<T>;
};
template <>
struct Map<ours::ncclUniqueId> {
  using type = ::ncclUniqueId;
};
#define MAP_ENUM(T, list) \
  template <>             \
  struct Map<ours::T> {   \
    using type = ::T;     \
  };
ALEXNET_NCCL_ENUMS(MAP_ENUM)

template <typename F>
struct MapFn;
template <typename R, typename... A>
struct MapFn<R (*)(A...)> {
  using type = Map_t<R> (*)(Map_t<A>...);
};

#define SAME_VALUE(name, value) \
  static_assert(static_cast<long long>(ours::name) == static_cast<long long>(::name), "value differs from nccl.h: " #name);
#define SAME_ENUM(type, list)                                                                        \
  static_assert(sizeof(ours::type) == sizeof(::type), "sizeof differs from nccl.h: " #type);         \
  static_assert(std::is_same<std::underlying_type_t<ours::type>, std::underlying_type_t<::type>>::value, \
                "underlying type differs from nccl.h: " #type);                                      \
  list(SAME_VALUE)
ALEXNET_NCCL_ENUMS(SAME_ENUM)

static_assert(std::is_same<ours::ncclComm_t, ::ncclComm_t>::value, "handle type differs from nccl.h: ncclComm_t");
static_assert(std::is_same<::cudaStream_t, struct CUstream_st*>::value, "cudaStream_t differs from driver_types.h");
static_assert(ours_unique_id_bytes == NCCL_UNIQUE_ID_BYTES, "value differs from nccl.h: NCCL_UNIQUE_ID_BYTES");
static_assert(sizeof(ours::ncclUniqueId) == sizeof(::ncclUniqueId), "sizeof differs from nccl.h: ncclUniqueId");
static_assert(alignof(ours::ncclUniqueId) == alignof(::ncclUniqueId), "alignof differs from nccl.h: ncclUniqueId");

#define SAME_FUNCTION(name)                                                                   \
  static_assert(std::is_same<MapFn<ours::PFN_##name>::type, decltype(&::name)>::value,        \
                "function type differs from nccl.h: " #name);
ALEXNET_NCCL_FUNCTIONS(SAME_FUNCTION)

int main() {
  int items = 0, bad = 0;
#define LIST_VALUE(name, value) std::printf("abi_item enumerator %s = %d\n", #name, static_cast<int>(::name)), ++items;
#define LIST_ENUM(type, list) std::printf("abi_item enum %s\n", #type), ++items; list(LIST_VALUE)
  ALEXNET_NCCL_ENUMS(LIST_ENUM)
  std::printf("abi_item handle ncclComm_t\n"), ++items;
  std::printf("abi_item struct ncclUniqueId (%zu bytes)\n", sizeof(::ncclUniqueId)), ++items;
#define LIST_FUNCTION(name) std::printf("abi_item function %s\n", #name), ++items;
  ALEXNET_NCCL_FUNCTIONS(LIST_FUNCTION)
  const char* lib = std::getenv("ALEXNET_NCCL_ABI_LIBRARY");
  if (lib != nullptr && *lib != '\0') {
    void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      std::printf("MISMATCH: cannot load %s: %s\n", lib, dlerror());
      return 1;
    }
#define CHECK_SYMBOL(name)                                                 \
  if (dlsym(h, #name) == nullptr) {                                        \
    std::printf("MISMATCH: %s does not export %s\n", lib, #name);          \
    ++bad;                                                                 \
  }
    ALEXNET_NCCL_FUNCTIONS(CHECK_SYMBOL)
    auto get_version = reinterpret_cast<ours::PFN_ncclGetVersion>(dlsym(h, "ncclGetVersion"));
    int v = 0;
    ++items;
    if (get_version == nullptr || get_version(&v) != ours::ncclSuccess || v != NCCL_VERSION_CODE) {
      std::printf("MISMATCH: %s: ncclGetVersion() = %d, the header's NCCL_VERSION_CODE is %d\n", lib, v, NCCL_VERSION_CODE);
      ++bad;
    } else {
      std::printf("abi_item library %s (ncclGetVersion() = %d)\n", lib, v);
    }
  }
  if (bad) return 1;
  std::printf("nccl-abi: OK %d items (NCCL %d.%d.%d headers)\n", items, NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  return 0;
}
