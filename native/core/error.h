// Typed errors of the native core. Every user-facing failure is an alexnet::Error carrying a
// stable code (the JS `error.code`) and a message; native/binding turns it into a JS Error.
// Nothing in native/ calls exit() or abort() on a user error.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace alexnet {

// Codes are strings so that JS code can switch on them; keep them stable.
namespace code {
inline constexpr const char* kArgument = "ERR_ARGUMENT";      // bad option / hyper-parameter
inline constexpr const char* kShape = "ERR_SHAPE";            // wrong rank or size
inline constexpr const char* kDtype = "ERR_DTYPE";            // wrong element type
inline constexpr const char* kDevice = "ERR_DEVICE";          // tensors on different devices
inline constexpr const char* kDisposed = "ERR_DISPOSED";      // use after dispose()
inline constexpr const char* kOutOfMemory = "ERR_OUT_OF_MEMORY";
inline constexpr const char* kCuda = "ERR_CUDA";              // CUDA runtime failure
inline constexpr const char* kCudaUnavailable = "ERR_CUDA_UNAVAILABLE";
inline constexpr const char* kDist = "ERR_DIST";              // MPI missing or failing, collectives
inline constexpr const char* kInternal = "ERR_INTERNAL";
}  // namespace code

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// A user's string for a message: in single quotes, control characters (a NUL inside, a
// newline) written as \xNN, so the message shows what was passed and is not cut at a NUL.
inline std::string quoted(const std::string& s) {
  std::string out = "'";
  for (const unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

// Builds a message from pieces: fail(code::kShape, "conv2d: input has ", c, " channels").
// Numbers print with up to 15 significant digits (2.0000001 is not shown as 2).
template <typename... Parts>
[[noreturn]] void fail(const char* code, const Parts&... parts) {
  std::ostringstream os;
  os.precision(15);
  detail::append(os, parts...);
  throw Error(code, os.str());
}

}  // namespace alexnet

// Internal invariant (not a user error): still a typed exception, never an abort.
#define ALEXNET_ASSERT(cond)                                                             \
  do {                                                                                   \
    if (!(cond))                                                                         \
      ::alexnet::fail(::alexnet::code::kInternal, "internal check failed: " #cond " at ", \
                      __FILE__, ":", __LINE__);                                          \
  } while (0)
