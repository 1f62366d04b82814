"""The peak tensor memory of a training step (coop/measure/step_memory.py): what the profiler's
allocation events add up to, checked on allocations of known size, and the cached-feature step
needing less than the naive one."""
from __future__ import annotations

import torch

from coop.measure.step_memory import MB, peak_tensor_bytes, step_memory


def test_the_peak_is_the_largest_running_total_of_allocations():
    def fn():
        a = torch.ones(1024, 1024)  # 4 MiB
        b = torch.ones(512, 1024)  # 2 MiB, while a is alive
        del a, b
        c = torch.ones(256, 1024)  # 1 MiB, after both were freed
        return c.sum()

    got = peak_tensor_bytes(fn)
    assert 6 * MB <= got["peak_bytes"] < 6 * MB + 64 * 1024
    assert got["net_bytes"] < 64 * 1024  # everything the call made was freed by its end
    assert got["events"] >= 4


def test_the_cached_feature_step_needs_less_than_the_naive_one(tiny_clip):
    res = step_memory(tiny_clip, ["ant", "bass", "car side", "yin yang"], batch=4)
    assert 0 < res["ours"]["peak_mb"] < res["naive"]["peak_mb"]
    assert res["weights_mb"] == sum(p.numel() * 4 for p in tiny_clip.parameters()) / MB
