"""helpers.evidence.speed, the one size/latency implementation (notebook 04 and the benchmark)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.method import inference
from helpers.evidence import speed
from helpers.method.model import shake_shake_26_2x32d


def test_prepare_puts_model_and_input_in_the_same_memory_format():
    # the trained model arrives in channels_last, the input in the default format: timing must not mix them
    model = shake_shake_26_2x32d(1, 10).to(memory_format=torch.channels_last)
    for fmt in (torch.channels_last, torch.contiguous_format):
        m, xx = speed.prepare(model, torch.randn(2, 3, 8, 8)[:, :1], "cpu", fmt)
        conv = next(mod for mod in m.modules() if isinstance(mod, nn.Conv2d) and mod.kernel_size == (3, 3))
        assert conv.weight.is_contiguous(memory_format=fmt)
        assert xx.is_contiguous(memory_format=fmt)
        assert not m.training
    # the default is the format inference uses on that device (channels_last on the CPU)
    m, xx = speed.prepare(shake_shake_26_2x32d(1, 10), torch.randn(1, 1, 16, 16), "cpu")
    assert inference.memory_format_for("cpu") == torch.channels_last
    conv = next(mod for mod in m.modules() if isinstance(mod, nn.Conv2d) and mod.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert xx.is_contiguous(memory_format=torch.channels_last)


def test_macs_counted_by_flop_counter():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    assert speed.macs_per_image(net, (1, 8, 8)) == 8 * 8 * 4 * 9 + 4 * 8 * 8 * 10
    assert net.training            # the model's mode is left as it was


def test_state_dict_size():
    net = nn.Linear(256, 256)      # 65,792 float32 parameters
    assert 256 * 257 * 4 < speed.state_dict_bytes(net) < 256 * 257 * 4 + 4096
    assert speed.state_dict_megabytes(net) == pytest.approx(speed.state_dict_bytes(net) / 2**20)


def test_round_robin_times_every_call_in_turn():
    order = []
    calls = {"a": (lambda x: order.append("a"), None), "b": (lambda x: order.append("b"), None)}
    times = speed.round_robin(calls, rounds=3, number=2, warmup=1)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t > 0 for v in times.values() for t in v)
    assert order[:2] == ["a", "b"]                     # our warm-up, then a block of a, a block of b, ...
    blocks = [k for i, k in enumerate(order[2:]) if i == 0 or order[2:][i - 1] != k]
    assert blocks == ["a", "b"] * 3                    # (Timer.timeit adds its own warm-up calls to each block)
    assert order[2:].count("a") >= 3 * 2


def test_size_and_latency_table():
    torch.manual_seed(0)
    small = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10))
    big = nn.Sequential(nn.Conv2d(3, 64, 3), nn.Conv2d(64, 64, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    table = speed.size_and_latency({"small": (small, 1), "big": (big, 3)}, [8], "cpu", rounds=2, number=1, warmup=1)
    assert list(table["model"]) == ["small", "big"]
    assert list(table["input"]) == ["1x1x8x8", "1x3x8x8"]
    assert (table["median s / image"] > 0).all()
    assert table.loc[1, "GMACs"] > table.loc[0, "GMACs"] > 0
    assert table.loc[1, "parameters"] > table.loc[0, "parameters"]
