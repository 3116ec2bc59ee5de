"""The precision setting: "auto" is bf16 only where the CPU computes it natively, fp32 is forced by the
setting, training and inference run under the resolved autocast, and a checkpoint resumes only under
the precision it was trained in (a one-line refusal otherwise)."""
import json

import pytest
import torch

from conftest import assert_one_line, chips
from helpers.method import devices, inference
from helpers.method import runs
from helpers.evidence import speed
from helpers.method.checkpoints import CheckpointError, checkpoint_path, load_checkpoint
from helpers.settings.config import SettingsError
from helpers.method.model import shake_shake_26_2x32d
from helpers.method.training import train_stage

pytestmark = pytest.mark.usefixtures("sar_data_dir")


def cpu_bf16(monkeypatch, avx512_bf16: bool, amx: bool):
    """Pretend the CPU has (or lacks) AVX512-BF16 and AMX tiles, and that there is no GPU."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(True, False, "bf16"), (False, True, "bf16"),
                                                         (True, True, "bf16"), (False, False, "fp32")])
def test_auto_is_bf16_only_where_the_cpu_computes_it(monkeypatch, avx512_bf16, amx, expected):
    cpu_bf16(monkeypatch, avx512_bf16, amx)
    assert devices.cpu_has_native_bf16() is (expected == "bf16")
    assert devices.resolve_precision("auto", "cpu") == expected
    assert devices.resolve_precision("auto", "auto") == expected


def test_a_torch_without_the_checks_means_fp32(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_precision("auto", "cpu") == "fp32"


def test_the_setting_forces_fp32_and_refuses_what_the_device_cannot(monkeypatch):
    cpu_bf16(monkeypatch, True, True)
    assert devices.resolve_precision("fp32", "cpu") == "fp32"
    assert devices.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(SettingsError, match=r"precision 'fp16' needs a CUDA device \(this run uses cpu\)") as e:
        devices.resolve_precision("fp16", "cpu")
    assert_one_line(e)
    with pytest.raises(SettingsError, match=r"setting 'precision' must be one of auto, fp32, bf16, fp16, got 'half'"):
        devices.resolve_precision("half", "cpu")


def test_autocast_runs_the_convolutions_in_the_resolved_dtype():
    model = shake_shake_26_2x32d(in_channels=1, num_classes=10).eval()
    seen = []
    model.stem[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        for p in ("fp32", "bf16"):
            with devices.autocast(p, "cpu"):
                model(x)
    assert seen == [torch.float32, torch.bfloat16]


def test_inference_follows_the_precision_setting():
    torch.manual_seed(0)
    model = shake_shake_26_2x32d(in_channels=1, num_classes=10).eval()
    data = chips(1, transform="eval")
    seen = []
    model.fc.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    p32 = inference.predict(model, data, k=1, device="cpu", precision="fp32")
    p16 = inference.predict(model, data, k=1, device="cpu", precision="bf16")
    assert seen == [torch.float32, torch.bfloat16]
    assert p16.dtype == torch.float32 and p16.shape == p32.shape == (10, 10)
    # bf16 keeps 8 bits of mantissa: probabilities agree to about a percent, not exactly.
    assert torch.allclose(p16, p32, atol=0.05) and not torch.equal(p16, p32)


def test_latency_is_timed_under_the_same_autocast():
    model = shake_shake_26_2x32d(in_channels=1, num_classes=10).eval()
    seen = []
    model.fc.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    speed.latencies({"m": model}, {"m": torch.randn(1, 1, 16, 16)}, "cpu", precision="bf16", rounds=1, number=1,
                    warmup=1)
    assert seen and set(seen) == {torch.bfloat16}


def _train(run_dir, settings, steps=2):
    torch.manual_seed(0)
    return train_stage(shake_shake_26_2x32d(), chips(2), stage="stage1", run_dir=run_dir, settings=settings,
                       steps=steps, lr=0.05, progress=False)


def test_the_stage_records_its_resolved_precision_and_resumes_only_under_it(tmp_path, tiny_settings):
    _train(tmp_path, tiny_settings(device="cpu", precision="bf16"))
    ckpt = load_checkpoint(checkpoint_path(tmp_path, "stage1"))
    assert ckpt["config"]["precision"] == "bf16" and ckpt["config"]["settings"]["precision"] == "bf16"
    _train(tmp_path, tiny_settings(device="cpu", precision="bf16"))          # same precision: loads, no error
    with pytest.raises(CheckpointError, match=r"stage1/checkpoint.pt was trained in bf16, this run computes in fp32 "
                                              r"\(precision='fp32' on cpu\); resume it with -p precision bf16") as e:
        _train(tmp_path, tiny_settings(device="cpu", precision="fp32"))
    assert_one_line(e)


def test_a_checkpoint_from_before_the_setting_counts_as_fp32(tmp_path, tiny_settings):
    _train(tmp_path, tiny_settings(device="cpu", precision="fp32"))
    path = checkpoint_path(tmp_path, "stage1")
    ckpt = torch.load(path, weights_only=False)
    del ckpt["config"]["precision"]
    torch.save(ckpt, path)
    _train(tmp_path, tiny_settings(device="cpu", precision="fp32"))          # resumes (here: loads) as fp32
    with pytest.raises(CheckpointError, match="was trained in fp32, this run computes in bf16"):
        _train(tmp_path, tiny_settings(device="cpu", precision="bf16"))


def test_env_json_records_the_resolved_precision(tmp_path, monkeypatch):
    cpu_bf16(monkeypatch, False, False)
    run_dir, _ = runs.open_run(tmp_path / "r", "smoke", device="cpu")
    env = json.loads((run_dir / "env.json").read_text())
    assert env["precision"] == "fp32" and env["cpu_native_bf16"] is False
    cpu_bf16(monkeypatch, True, False)
    runs.open_run(tmp_path / "r", "smoke", device="cpu")                     # reopened on a bf16 machine
    env = json.loads((run_dir / "env.json").read_text())
    assert env["precision"] == "bf16" and env["cpu_native_bf16"] is True


def test_parity_table_pairs_by_seed_with_a_t_interval():
    """Hand-worked: differences 1, 2, 3 points over 3 seeds: mean 2, sd 1, t(0.975, df 2) = 4.3027, so the
    half-width is 4.3027 / sqrt(3) = 2.484 points; t = 2 / (1 / sqrt(3)) = 3.464, p = 0.0742."""
    import pandas as pd

    from benchmarks.precision import paired
    rows = []
    for seed, (a, b) in enumerate([(0.50, 0.51), (0.60, 0.62), (0.55, 0.58)]):
        for method in ("three-stage", "plain CE", "cRT"):
            rows += [{"data": "x", "seed": seed, "method": method, "precision": "fp32", "balanced_top1": a},
                     {"data": "x", "seed": seed, "method": method, "precision": "bf16", "balanced_top1": b}]
    table = paired(pd.DataFrame(rows))
    r = table[(table["method"] == "cRT") & (table["data"] == "x")].iloc[0]
    assert r["pairs"] == 3 and r["diff_mean"] == pytest.approx(0.02)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(0.02 - 0.0248414, abs=1e-6), pytest.approx(0.02 + 0.0248414, abs=1e-6))
    assert r["p"] == pytest.approx(0.0741799, abs=1e-6)
    assert r["fp32_seed_sd"] == pytest.approx(0.05)        # sd of 0.50, 0.60, 0.55
    assert list(table["data"].unique()) == ["x", "both sets"]


@pytest.mark.slow
def test_the_step_and_loop_timers_run():
    from benchmarks.precision import loop_share, step_ratio
    r = step_ratio(16, batch_size=8, rounds=2, warmup=1)
    assert r["fp32_ms"] > 0 and r["bf16_ms"] > 0 and r["ratio"] > 0
    s = loop_share(16, batch_size=8, steps=2, epochs=3)
    assert s["loop_ms"] > 0 and 0 < s["share"]
