# node-gyp build of the addon (prebuildify drives this one). Same sources as CMakeLists.txt:
# native/sources.json, read through scripts/detect.mjs, which also finds nvcc and OpenBLAS.
{
  "variables": {
    "alexnet_cuda_home%": "<!(node scripts/detect.mjs cuda-home)",
    "alexnet_blas_include%": "<!(node scripts/detect.mjs blas-include)",
    "alexnet_blas_lib%": "<!(node scripts/detect.mjs blas-lib)"
  },
  "targets": [
    {
      "target_name": "alexnet",
      "sources": ["<!@(node scripts/detect.mjs sources cpp)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "ALEXNET_BUILD_SYSTEM=\"node-gyp\""
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-fexceptions", "-std=c++17", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {"GCC_ENABLE_CPP_EXCEPTIONS": "YES"},
      "libraries": ["-ldl"],
      "conditions": [
        ["alexnet_cuda_home!=''", {
          "sources": ["<!@(node scripts/detect.mjs sources cuda)"],
          "defines": ["ALEXNET_WITH_CUDA", "ALEXNET_CUDA_ARCHS=\"<!(node scripts/detect.mjs cuda-archs)\""],
          "rules": [{
            "rule_name": "nvcc",
            "extension": "cu",
            "inputs": ["<(RULE_INPUT_PATH)"],
            "outputs": ["<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o"],
            "action": [
              "<(alexnet_cuda_home)/bin/nvcc", "-std=c++17", "-O3", "-Xcompiler", "-fPIC",
              "<!@(node scripts/detect.mjs cuda-gencode)",
              "-DALEXNET_WITH_CUDA", "-DALEXNET_CUDA_ARCHS=\"<!(node scripts/detect.mjs cuda-archs)\"",
              "-c", "<(RULE_INPUT_PATH)", "-o", "<@(_outputs)"
            ],
            "message": "nvcc <(RULE_INPUT_PATH)",
            "process_outputs_as_sources": 1
          }],
          "libraries": ["<(alexnet_cuda_home)/lib64/libcudart_static.a", "-ldl", "-lpthread", "-lrt"]
        }],
        ["alexnet_blas_include!='' and alexnet_blas_lib!=''", {
          "include_dirs": ["<(alexnet_blas_include)"],
          "defines": ["ALEXNET_WITH_CBLAS", "ALEXNET_OPENBLAS"],
          "libraries": ["<(alexnet_blas_lib)", "-lpthread", "-lm", "-Wl,--exclude-libs,ALL"]
        }]
      ]
    }
  ]
}
