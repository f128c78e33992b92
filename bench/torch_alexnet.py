#!/usr/bin/env python3
"""PyTorch eager reference for bench/gpu.mjs: the same seed AlexNet, batch and optimizer.

Prints one JSON object: {"torch", "cuda", "cudnn", "device", "batch", "trainImagesPerSecond",
"inferImagesPerSecond", "trainStepMs", "inferMs", "peakMemoryBytes", "bf16": {...} (with --bf16:
the same measurements under bf16 autocast with channels-last model and input, PyTorch's fast
mixed-precision recipe), "compiled": {...} (with --compile: torch.compile of the fp32/TF32
model), "compiledBf16": {...} (with --compile and --bf16: torch.compile of the bf16
channels-last model)}; a variant that fails reports {"error"} in its place. On a failure of the
first measurement, {"error": "..."} and exit status 1.

Timing as in bench/gpu.mjs: 3 warm-up iterations before each timed loop (cudnn.benchmark's
search and torch.compile's compilation happen there) and eager CUDA module loading
(CUDA_MODULE_LOADING=EAGER unless set otherwise), so no lazy kernel loading is timed.
"""
import argparse
import json
import os
import sys
import time

# read by the CUDA driver when PyTorch initialises it: set before importing torch
os.environ.setdefault("CUDA_MODULE_LOADING", "EAGER")

try:
    import torch
    import torch.nn as nn
except Exception as e:  # noqa: BLE001 - the caller reports it
    print(json.dumps({"error": f"import torch failed: {type(e).__name__}: {e}"}))
    sys.exit(1)

WARMUP = 3


def seed_alexnet(classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(inplace=True), nn.Dropout(0.4),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.4),
        nn.Linear(4096, classes),
    )


def timed(fn, iters: int) -> float:
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def measure(model, x, y, opt, iters, bf16=False):
    loss_fn = nn.CrossEntropyLoss()

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)

    def train():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad(), autocast():
            model(x)

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    model.train()
    t_train = timed(train, iters)
    model.eval()
    t_infer = timed(infer, iters)
    model.train()
    b = x.shape[0]
    return {"trainImagesPerSecond": b / t_train, "inferImagesPerSecond": b / t_infer,
            "trainStepMs": 1000 * t_train, "inferMs": 1000 * t_infer,
            "peakMemoryBytes": torch.cuda.max_memory_allocated()}


def variant(fn):
    """One optional measurement: its result, or {"error"} (the others still run)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - report, do not fail the benchmark
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def main() -> None:
    if not torch.cuda.is_available():
        raise RuntimeError(f"torch.cuda.is_available() is False (torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--strict-fp32", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--bf16", action="store_true", help="also bf16 autocast with channels-last")
    p.add_argument("--compile-only-bf16", action="store_true",
                   help="with --compile and --bf16: compile the bf16 channels-last model only (one compilation, not two)")
    a = p.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = not a.strict_fp32
    torch.backends.cuda.matmul.allow_tf32 = not a.strict_fp32
    dev = torch.device("cuda")
    model = seed_alexnet(a.classes).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 227, 227, device=dev)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    out = {
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(0), "batch": a.batch, "tf32": not a.strict_fp32,
        "moduleLoading": os.environ.get("CUDA_MODULE_LOADING"),
        **measure(model, x, y, opt, a.iters),
    }
    if a.compile and not (a.compile_only_bf16 and a.bf16):
        out["compiled"] = variant(lambda: measure(torch.compile(model), x, y, opt, a.iters))
    if a.bf16:
        # PyTorch's fast recipe: fp32 master weights, bf16 autocast, channels-last tensors
        cl = torch.channels_last
        model_cl = seed_alexnet(a.classes).to(dev).to(memory_format=cl)
        opt_cl = torch.optim.SGD(model_cl.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x_cl = x.contiguous(memory_format=cl)
        out["bf16"] = variant(lambda: measure(model_cl, x_cl, y, opt_cl, a.iters, bf16=True))
        if a.compile:
            out["compiledBf16"] = variant(lambda: measure(torch.compile(model_cl), x_cl, y, opt_cl, a.iters, bf16=True))
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - one JSON line for bench/gpu.mjs, the trace on stderr
        import traceback

        traceback.print_exc()
        print(json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}))
        sys.exit(1)
