// One registration function per operator family (native/binding/<family>.cc).
#pragma once

#include <napi.h>

namespace alexnet::binding {

void register_tensor(Napi::Env env, Napi::Object exports);      // empty, fromData, synchronize
void register_info(Napi::Env env, Napi::Object exports);        // info, threads, gemm backend
void register_elementwise(Napi::Env env, Napi::Object exports); // fill, copy, scale, axpy
void register_activation(Napi::Env env, Napi::Object exports);  // relu
void register_conv(Napi::Env env, Napi::Object exports);        // conv2d (+ bias)
void register_pool(Napi::Env env, Napi::Object exports);        // maxPool2d
void register_lrn(Napi::Env env, Napi::Object exports);         // localResponseNorm
void register_linear(Napi::Env env, Napi::Object exports);      // linear, matmul
void register_dropout(Napi::Env env, Napi::Object exports);     // dropout
void register_loss(Napi::Env env, Napi::Object exports);        // softmax, softmaxCrossEntropy
void register_sgd(Napi::Env env, Napi::Object exports);         // sgdStep
void register_metrics(Napi::Env env, Napi::Object exports);     // topkCorrect
void register_image(Napi::Env env, Napi::Object exports);       // normalizeImages
void register_bench(Napi::Env env, Napi::Object exports);       // benchOps (C++-driven benchmark)
void register_cuda_abi(Napi::Env env, Napi::Object exports);    // cudaAbi, cudaLibraries

}  // namespace alexnet::binding
