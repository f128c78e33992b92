#!/usr/bin/env python3
"""PyTorch CPU peer for `alexnet bench` and bench/cpu.mjs: the same seed AlexNet (bench/torch_alexnet.py),
fp32, eager, oneDNN convolutions, on as many threads as ours (torch.set_num_threads).

Two modes:
  --batch 1,16,64 [--reps 3]   one-shot: prints one JSON object per batch size,
                               {"batch", "inferMs", "trainMs", "inferImagesPerSecond", "trainImagesPerSecond"}
                               (best of --reps after one warm-up each)
  --serve                      for the benchmark's alternating rounds: prints {"ready": true, "torch", "threads"}
                               once, then for each request line {"batch": B, "warmup": bool} times one inference
                               pass and one training step at batch B (after one warm-up of each when "warmup")
                               and prints {"batch", "inferMs", "trainMs"}; exits at the end of its input.
On a failure, prints {"error": "..."} and exits with status 1.

Inference: model.eval() under torch.no_grad(). Training step: forward, cross-entropy, backward and
an SGD step with momentum 0.9 and weight decay 5e-4 (ours: src/optim/sgd.ts's defaults), lr 1e-4 as
`alexnet bench` uses. Inputs uniform in [-0.5, 0.5), labels i % 2 (2 classes), as `alexnet bench`.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn as nn
    from torch_alexnet import seed_alexnet
except Exception as e:  # noqa: BLE001 - the caller reports it
    print(json.dumps({"error": f"import torch failed: {type(e).__name__}: {e}"}), flush=True)
    sys.exit(1)

CLASSES = 2


class Rig:
    """One batch size's model, optimizer and inputs."""

    def __init__(self, batch: int):
        torch.manual_seed(1)
        self.batch = batch
        self.model = seed_alexnet(CLASSES)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
        self.loss_fn = nn.CrossEntropyLoss()
        self.x = torch.rand(batch, 3, 227, 227) - 0.5
        self.y = torch.arange(batch) % CLASSES

    def infer(self) -> float:
        self.model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            self.model(self.x)
        return 1000 * (time.perf_counter() - t0)

    def train(self) -> float:
        self.model.train()
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        loss.item()
        return 1000 * (time.perf_counter() - t0)


def serve() -> None:
    rig = None
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        b = int(req["batch"])
        if rig is None or rig.batch != b:
            rig = None  # free the previous batch's tensors first
            rig = Rig(b)
        if req.get("warmup"):
            rig.infer()
            rig.train()
        infer_ms = rig.infer()
        train_ms = rig.train()
        print(json.dumps({"batch": b, "inferMs": infer_ms, "trainMs": train_ms}), flush=True)


def one_shot(batches, reps: int) -> None:
    for b in batches:
        rig = Rig(b)
        rig.infer()
        infer_ms = min(rig.infer() for _ in range(reps))
        rig.train()
        train_ms = min(rig.train() for _ in range(reps))
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": b,
                          "inferMs": infer_ms, "trainMs": train_ms,
                          "inferImagesPerSecond": 1000 * b / infer_ms,
                          "trainImagesPerSecond": 1000 * b / train_ms}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: PyTorch's choice)")
    p.add_argument("--batch", default="1,16,64")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--serve", action="store_true")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.serve:
        serve()
    else:
        one_shot([int(b) for b in a.batch.split(",")], a.reps)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - one JSON line for the caller, the trace on stderr
        import traceback

        traceback.print_exc()
        print(json.dumps({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}), flush=True)
        sys.exit(1)
