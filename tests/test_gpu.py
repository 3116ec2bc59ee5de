"""Tests that need CUDA (skipped without it): CPU and CUDA test-time augmentation agree on the predicted class."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import chips
from helpers.method import inference
from helpers.method.model import shake_shake_26_2x32d

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("k", [1, 3])
def test_cpu_and_cuda_tta_agree_on_argmax(k):
    torch.manual_seed(0)
    model = shake_shake_26_2x32d()
    with torch.no_grad():                           # a head with clear preferences, so that argmax is not a near tie
        model.fc.weight.mul_(20)
    data = chips(5, size=56, transform="eval")      # 50 chips at the paper's 56 px
    cpu = inference.predict(copy.deepcopy(model), data, k=k, device=torch.device("cpu"))
    gpu = inference.predict(copy.deepcopy(model), data, k=k, device=torch.device("cuda"))
    top2 = cpu.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-2        # chips whose CPU answer is not a near tie
    assert clear.sum() >= 25
    assert torch.equal(cpu.argmax(1)[clear], gpu.argmax(1)[clear])
    assert (cpu - gpu).abs().max() < 5e-2           # probabilities close (bf16 autocast, if used, stays within this)
