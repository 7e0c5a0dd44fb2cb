"""Splitting a batch run between processes: `--shard I/N`, or one process per device under accelerate/torchrun.

Every input keeps its place in the whole run (its index, so its seed and output name), whichever
process makes it; the shares are disjoint and cover the run, so each input is made exactly once.
"""

from __future__ import annotations

import os
from typing import Sequence, TypeVar


T = TypeVar("T")


def launched_processes() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def my_share(items: Sequence[T], shard: tuple[int, int] | None = None) -> tuple[list[T], str | None]:
    """This process's items and a label for its share ('2/4'), or all items and None (`shard` checked where it entered)."""
    if shard:
        index, count = shard
        return [item for k, item in enumerate(items) if k % count == index], f"{index}/{count}"
    if launched_processes() > 1:
        import torch
        from accelerate import PartialState

        # cpu=True makes accelerate use gloo on CPU-only hosts; without it each process believes it is alone.
        state = PartialState(cpu=not torch.cuda.is_available())
        with state.split_between_processes(list(range(len(items)))) as mine:
            return [items[k] for k in mine], f"{state.process_index}/{state.num_processes}"
    return list(items), None
