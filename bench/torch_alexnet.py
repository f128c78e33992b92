#!/usr/bin/env python3
"""PyTorch eager reference for bench/gpu.mjs: the same seed AlexNet, batch and optimizer.

Prints one JSON object: {"torch", "cuda", "cudnn", "device", "batch", "trainImagesPerSecond",
"inferImagesPerSecond", "compiled": {...} (torch.compile, when --compile and it works)}; on a
failure, {"error": "..."} and exit status 1.

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


def measure(model, x, y, opt, iters):
    loss_fn = nn.CrossEntropyLoss()

    def train():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x)

    model.train()
    t_train = timed(train, iters)
    model.eval()
    t_infer = timed(infer, iters)
    model.train()
    b = x.shape[0]
    return {"trainImagesPerSecond": b / t_train, "inferImagesPerSecond": b / t_infer,
            "trainStepMs": 1000 * t_train, "inferMs": 1000 * t_infer}


def main() -> None:
    if not torch.cuda.is_available():
        raise RuntimeError(f"torch.cuda.is_available() is False (torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--strict-fp32", action="store_true")
    p.add_argument("--compile", action="store_true")
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
    if a.compile:
        try:
            cm = torch.compile(model)
            out["compiled"] = measure(cm, x, y, opt, a.iters)
        except Exception as e:  # noqa: BLE001 - report, do not fail the benchmark
            out["compiled"] = {"error": str(e).splitlines()[0]}
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - one JSON line for bench/gpu.mjs, the trace on stderr
        import traceback

        traceback.print_exc()
        print(json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}))
        sys.exit(1)
