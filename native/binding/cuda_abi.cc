// cudaAbi(): the numbers our own cuDNN / cuBLAS declarations compile to (enum values by name,
// sizeof / alignof / offsetof), for test/cuda-abi.test.ts to pin against the fact sheet.
// cudaLibraries(): the run-time loader's result (loads on the first call, not at addon load).
#include <cstddef>
#include <type_traits>
#include <utility>

#include "../cuda/dynload/loader.h"
#include "abi_tables.h"
#include "common.h"

namespace alexnet::binding {

using namespace alexnet::cuda::dnn;   // NOLINT: names below are spelled as cuDNN spells them
using namespace alexnet::cuda::blas;  // NOLINT

Napi::Value CudaAbi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);

  AbiTables abi(env);
  ALEXNET_CUDNN_ENUMS(ALEXNET_ABI_ENUM)
  ALEXNET_CUBLAS_ENUMS(ALEXNET_ABI_ENUM)

#define ALEXNET_ABI_HANDLE(type) abi.add_type<type>(#type);
  ALEXNET_CUDNN_HANDLES(ALEXNET_ABI_HANDLE)
  ALEXNET_CUBLAS_HANDLES(ALEXNET_ABI_HANDLE)
  ALEXNET_ABI_HANDLE(cudaStream_t)
#undef ALEXNET_ABI_HANDLE

  // perf structs: sizeof / alignof above, offsetof and field sizes here
  Napi::Object offsets = Napi::Object::New(env);
  Napi::Object field_sizes = Napi::Object::New(env);
#define ALEXNET_ABI_FIELD(T, field)                                           \
  o.Set(#field, static_cast<double>(offsetof(T, field)));                     \
  fs.Set(#field, static_cast<double>(sizeof(std::declval<T&>().field)));
#define ALEXNET_ABI_STRUCT(T)                                                 \
  {                                                                           \
    Napi::Object o = Napi::Object::New(env);                                  \
    Napi::Object fs = Napi::Object::New(env);                                 \
    ALEXNET_CUDNN_PERF_FIELDS(ALEXNET_ABI_FIELD, T)                           \
    offsets.Set(#T, o);                                                       \
    field_sizes.Set(#T, fs);                                                  \
    abi.add_type<T>(#T);                                                      \
  }
  ALEXNET_CUDNN_PERF_STRUCTS(ALEXNET_ABI_STRUCT)
#undef ALEXNET_ABI_STRUCT
  // cuBLASLt's semi-opaque structs: sizes and alignment only (their bytes are the library's)
#define ALEXNET_ABI_LT_STRUCT(T) abi.add_type<T>(#T);
  ALEXNET_CUBLASLT_STRUCTS(ALEXNET_ABI_LT_STRUCT)
#undef ALEXNET_ABI_LT_STRUCT
#undef ALEXNET_ABI_FIELD

  // the symbols the loader resolves, in order
  auto list = [&](std::initializer_list<const char*> names) {
    Napi::Array a = Napi::Array::New(env, names.size());
    uint32_t i = 0;
    for (const char* n : names) a.Set(i++, n);
    return a;
  };
#define ALEXNET_ABI_NAME(name) #name,
  Napi::Object functions = Napi::Object::New(env);
  functions.Set("cudnn", list({ALEXNET_CUDNN_FUNCTIONS(ALEXNET_ABI_NAME)}));
  functions.Set("cudnnOptional", list({ALEXNET_CUDNN_OPTIONAL_FUNCTIONS(ALEXNET_ABI_NAME)}));
  functions.Set("cublas", list({ALEXNET_CUBLAS_FUNCTIONS(ALEXNET_ABI_NAME)}));
  functions.Set("cublasLt", list({ALEXNET_CUBLASLT_FUNCTIONS(ALEXNET_ABI_NAME)}));
#undef ALEXNET_ABI_NAME

  // our status names (no library needed), for a few representative codes
  Napi::Object names = Napi::Object::New(env);
  for (int s : {0, 1002, 2000, 2002, 2013, 3007, 4003, 5000, 7777})
    names.Set(std::to_string(s), alexnet::cuda::cudnn_status_name(s));
  Napi::Object blas_names = Napi::Object::New(env);
  for (int s : {0, 3, 7, 13, 15, 99})
    blas_names.Set(std::to_string(s), alexnet::cuda::cublas_status_name(s));

  out.Set("enums", abi.enums);
  out.Set("sizeof", abi.sizes);
  out.Set("alignof", abi.aligns);
  out.Set("signed", abi.is_signed);
  out.Set("offsetof", offsets);
  out.Set("fieldSizeof", field_sizes);
  out.Set("functions", functions);
  out.Set("cudnnStatusNames", names);
  out.Set("cublasStatusNames", blas_names);
  out.Set("callName", alexnet::cuda::call_name("api.cudnnConvolutionForward(h, &a, x)"));
  return out;
}

namespace {

Napi::Object library_object(Napi::Env env, const alexnet::cuda::LibraryStatus& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", s.found);
  o.Set("path", s.path);
  o.Set("version", s.version_string);
  o.Set("versionNumber", static_cast<double>(s.version));
  if (s.cudart_version) o.Set("cudartVersion", static_cast<double>(s.cudart_version));
  Napi::Array searched = Napi::Array::New(env, s.searched.size());
  for (uint32_t i = 0; i < s.searched.size(); ++i) searched.Set(i, s.searched[i]);
  o.Set("searched", searched);
  Napi::Array notes = Napi::Array::New(env, s.notes.size());
  for (uint32_t i = 0; i < s.notes.size(); ++i) notes.Set(i, s.notes[i]);
  o.Set("notes", notes);
  o.Set("reason", s.reason);
  return o;
}

}  // namespace

Napi::Value CudaLibraries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const alexnet::cuda::Libraries& libs = alexnet::cuda::libraries();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cudnn", library_object(env, libs.cudnn));
  out.Set("cublas", library_object(env, libs.cublas));
  // cuBLASLt (the fused-epilogue path of the fully connected layers): resolved with cuBLAS
  Napi::Object lt = Napi::Object::New(env);
  lt.Set("found", libs.cublaslt_ok);
  lt.Set("note", libs.cublaslt_note);
  out.Set("cublasLt", lt);
  out.Set("reason", libs.reason);
  return out;
}

// cudaCheckError(library, status, call): throws what CUDNN_CHECK / CUBLAS_CHECK would throw
// for that status (the message format and error code are tested without a GPU).
Napi::Value CudaCheckError(const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsString())
    fail(code::kArgument, "cudaCheckError: expected (library: 'cudnn' | 'cublas', status, call)");
  const std::string lib = info[0].As<Napi::String>().Utf8Value();
  const int status = info[1].As<Napi::Number>().Int32Value();
  const std::string call = info[2].As<Napi::String>().Utf8Value();
  if (lib == "cudnn")
    alexnet::cuda::check_cudnn(static_cast<cudnnStatus_t>(status), call.c_str(), __FILE__, __LINE__);
  else if (lib == "cublas")
    alexnet::cuda::check_cublas(static_cast<cublasStatus_t>(status), call.c_str(), __FILE__, __LINE__);
  else
    fail(code::kArgument, "cudaCheckError: library must be 'cudnn' or 'cublas' but got '", lib, "'");
  return info.Env().Undefined();
}

}  // namespace alexnet::binding
