// Status names and the CUDNN_CHECK / CUBLAS_CHECK error helpers of loader.h. No library is
// needed to name a status (our own tables); the libraries' own texts are added when loaded.
#include <string>

#include "../../core/error.h"
#include "loader.h"

namespace alexnet::cuda {

// ---- status names and error helpers (no library needed) ------------------------------------

namespace {
const char* exact_cudnn_name(int status) {
#define ALEXNET_NAME_CASE(name, value) \
  if (status == (value)) return #name;
  ALEXNET_CUDNN_STATUS(ALEXNET_NAME_CASE)  // canonical names come before the aliases
#undef ALEXNET_NAME_CASE
  return nullptr;
}
}  // namespace

std::string cudnn_status_name(int status) {
  if (const char* n = exact_cudnn_name(status)) return n;
  // cuDNN 9 may return sub-codes we do not list: name them by category (docs/cuda-abi.md,
  // section A2, notes).
  const int category = dnn::cudnn_status_category(status);
  std::string cat;
  if (const char* n = exact_cudnn_name(category)) cat = n;
  if (category == 1000) cat = "CUDNN_STATUS_UNCATEGORIZED";
  if (category != 0 && !cat.empty()) return cat + " (sub-code " + std::to_string(status) + ")";
  return "CUDNN_STATUS_UNKNOWN (" + std::to_string(status) + ")";
}

std::string cublas_status_name(int status) {
#define ALEXNET_NAME_CASE(name, value) \
  if (status == (value)) return #name;
  ALEXNET_CUBLAS_STATUS(ALEXNET_NAME_CASE)
#undef ALEXNET_NAME_CASE
  return "CUBLAS_STATUS_UNKNOWN (" + std::to_string(status) + ")";
}

std::string call_name(const char* call) {
  std::string s = call ? call : "";
  const size_t paren = s.find('(');
  if (paren == std::string::npos) return s;
  s.erase(paren);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.pop_back();
  const size_t sep = s.find_last_of(".>: \t\n");
  if (sep != std::string::npos) s.erase(0, sep + 1);
  return s.empty() ? std::string(call) : s;
}

namespace {

// "…/native/cuda/conv.cu" -> "native/cuda/conv.cu"; otherwise the base name.
std::string short_file(const char* file) {
  std::string f = file ? file : "?";
  const size_t n = f.rfind("native/");
  if (n != std::string::npos) return f.substr(n);
  const size_t slash = f.find_last_of('/');
  return slash == std::string::npos ? f : f.substr(slash + 1);
}

}  // namespace

void throw_cudnn_error(int status, const char* call, const char* file, int line) {
  const std::string name = cudnn_status_name(status);
  const Libraries& libs = libraries();
  std::string text;
  std::string last;
  if (libs.cudnn_ok) {
    if (const char* t = libs.cudnn_api.cudnnGetErrorString(static_cast<dnn::cudnnStatus_t>(status)))
      text = t;
    if (libs.cudnn_api.cudnnGetLastErrorString) {
      char buf[1024];
      buf[0] = '\0';
      libs.cudnn_api.cudnnGetLastErrorString(buf, sizeof buf);
      buf[sizeof buf - 1] = '\0';
      last = buf;
    }
  }
  std::string detail = (text.empty() || text == name) ? "" : text + ", ";
  detail += "status " + std::to_string(status);
  std::string msg = call_name(call) + " failed: " + name + " (" + detail + ") at " +
                    short_file(file) + ":" + std::to_string(line);
  if (!last.empty()) msg += "\n  cuDNN: " + last;
  const bool oom = status == dnn::CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                   status == dnn::CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
  throw Error(oom ? code::kOutOfMemory : code::kCuda, msg);
}

void throw_cublas_error(int status, const char* call, const char* file, int line) {
  std::string name = cublas_status_name(status);
  std::string text;
  const Libraries& libs = libraries();
  if (libs.cublas_ok) {
    const auto s = static_cast<blas::cublasStatus_t>(status);
    if (const char* n = libs.cublas_api.cublasGetStatusName(s)) name = n;
    if (const char* t = libs.cublas_api.cublasGetStatusString(s)) text = t;
  }
  std::string detail = (text.empty() || text == name) ? "" : text + ", ";
  detail += "status " + std::to_string(status);
  std::string msg = call_name(call) + " failed: " + name + " (" + detail + ") at " +
                    short_file(file) + ":" + std::to_string(line);
  throw Error(status == blas::CUBLAS_STATUS_ALLOC_FAILED ? code::kOutOfMemory : code::kCuda, msg);
}

}  // namespace alexnet::cuda
