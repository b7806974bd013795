"""Run under torchrun by test_gan_train.py: 2 training steps on 2 gloo processes, then dump each replica."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from gan_helpers import tiny_options  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from synthswap.gan.train import GanTrainer  # noqa: E402
from synthswap.training import process_group  # noqa: E402


def main(faceset: str, out: str) -> None:
    torch.set_num_threads(1)
    with process_group("cpu") as (dist_info, device):
        trainer = GanTrainer(tiny_options(faceset, out, batch=8), dist_info, device)
        first_real = trainer._real_batch  # record what each rank trains on: the data must differ per rank
        seen = []

        def spy():
            x = first_real()
            seen.append(x.detach().clone())
            return x

        trainer._real_batch = spy
        for _ in range(2):
            trainer.train_step()
        tensors = {f"{name}.{k}": v.detach().clone().contiguous()
                   for name, m in trainer.modules().items() for k, v in m.state_dict().items()}
        tensors["seen_reals"] = torch.cat(seen)
        tensors["aug_p"] = torch.tensor(trainer.pipe.p)
        save_file(tensors, str(Path(out) / f"rank{dist_info.rank}.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
