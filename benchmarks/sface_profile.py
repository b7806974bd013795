"""Where SFace's forward + backward goes, fp32 against bf16 on the CPU (issue 29; not a test).

The identity loss runs SFace (`faces/sface_torch.SFaceNet`, frozen weights) forward and backward on
every swap training step; in bf16 it barely speeds up. This prints, for a batch of 16 faces in
channels_last (as `SFaceIdentity` runs it): the profiler's self time per op in each precision, and the
forward + backward time of three variants (all fp32, all bf16, the depthwise convolutions kept in
fp32 inside bf16), each the best of 5 after a warm-up.

    .venv/bin/python benchmarks/sface_profile.py --threads 2
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from synthswap.faces.sface_torch import SFaceNet


class Float32(nn.Module):
    """A layer run outside autocast, in fp32."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            return self.layer(x.float())


def depthwise_in_fp32(net: SFaceNet) -> SFaceNet:
    net = copy.deepcopy(net)
    for i, layer in enumerate(net.features):
        if isinstance(layer, nn.Conv2d) and layer.groups > 1:
            net.features[i] = Float32(layer)
    return net


def step(net: nn.Module, x: torch.Tensor, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = net(x)
    y.float().pow(2).sum().backward()


def best_ms(net: nn.Module, x: torch.Tensor, bf16: bool, repeats: int = 5) -> float:
    step(net, x, bf16)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(net, x, bf16)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    net = SFaceNet().eval().to(memory_format=torch.channels_last)
    for param in net.parameters():
        param.requires_grad_(False)  # frozen, as in the identity loss: only the input's gradient is needed
    x = torch.randn(args.batch, 3, 112, 112).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    for bf16 in (False, True):
        step(net, x, bf16)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step(net, x, bf16)
        print(f"--- {'bf16' if bf16 else 'fp32'}: self time per op")
        for event in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:5]:
            print(f"{event.key:40s} {event.self_cpu_time_total / 1000:8.1f} ms  x{event.count}")
    mixed = depthwise_in_fp32(net)
    print(f"forward + backward, batch {args.batch}, {args.threads} threads: all fp32 {best_ms(net, x, False):.1f} ms, "
          f"all bf16 {best_ms(net, x, True):.1f} ms, bf16 with depthwise in fp32 {best_ms(mixed, x, True):.1f} ms")


if __name__ == "__main__":
    main()
