# bench/torch_alexnet.py run on the CPU with its CUDA calls stubbed (scripts/gpu-rehearse.sh): checks the
# script's own logic -- every variant (eager, bf16 channels-last autocast, torch.compile of both)
# measured and reported -- where PyTorch has no GPU. torch.compile is stubbed to the identity (the
# Debian build's compiler needs a C++ toolchain and minutes). Prints torch_alexnet.py's JSON line.
import importlib.util
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("torch_alexnet", os.path.join(here, "..", "bench", "torch_alexnet.py"))
ta = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ta)

torch.cuda.is_available = lambda: True
torch.cuda.synchronize = lambda *a: None
torch.cuda.reset_peak_memory_stats = lambda *a: None
torch.cuda.max_memory_allocated = lambda *a: 123
torch.cuda.get_device_name = lambda *a: "cpu-stub"
real_device = torch.device
ta.torch.device = lambda name: real_device("cpu")
real_autocast = torch.autocast
torch.autocast = lambda dev, **k: real_autocast("cpu", **k)
torch.compile = lambda m: m
sys.argv = ["x", "--batch", "2", "--iters", "1", "--bf16", "--compile"] + sys.argv[1:]
ta.WARMUP = 1
ta.main()
