"""bf16 against fp32 on the CPU: the step-time ratio, the course loop's speed, and accuracy parity.

    python -m benchmarks.precision --step-times [--compile]     # fp32 vs bf16 autocast, 16 and 32 px
    python -m benchmarks.precision --parity --data synthetic-sar --seeds 0 1 2
    python -m benchmarks.precision --parity --report-only       # the table from what has been trained

--step-times: one SGD step of Shake-Shake-26 2x32d (batch 128, channels_last) on a random batch,
fp32 and bf16 autocast timed in alternating rounds (so that a change of load hits both alike), the
median of the per-round ratios; then the course's own loop (`train_stage`: loader, augmentation,
bookkeeping) at 16 px under bf16, as a share of the raw bf16 step speed.

--parity: three-stage, plain CE and cRT at the profile's budget, trained once in fp32 and once in
bf16 with the same seed and data, into runs/precision-parity-<profile>/<data>/<precision>/seed<k>/
(resumable: re-run the command to continue). The table gives, per method, the paired (by seed and
data set) difference bf16 - fp32 of test balanced top-1, its mean and 95% t-interval
(scipy.stats), beside the seed-to-seed standard deviation in fp32.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.publishing import cli
from helpers.settings import config
from helpers.method import runs
from helpers.method import devices, stages
from helpers.evidence import experiments, rebalancing
from helpers.datasets.data import load_data
from helpers.settings.paths import resolve_path

METHODS = ["three-stage", "plain CE", "cRT"]
PRECISIONS = ("fp32", "bf16")


# ------------------------------------------------------------------------------------------------ speed
def raw_step(size: int, batch_size: int = 128, precision: str = "fp32", compile: bool = False):
    """A closure running one SGD step (forward, backward, update) of a fresh Shake-Shake-26 2x32d,
    channels_last, under `precision` (resolved: "fp32" or "bf16") on a random batch; `compile` puts
    its forward pass through torch.compile (the first call then compiles)."""
    import torch
    import torch.nn.functional as F

    from helpers.method.model import shake_shake_26_2x32d
    torch.manual_seed(0)
    model = shake_shake_26_2x32d(in_channels=1, num_classes=10).to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch_size, 1, size, size).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))

    def step():
        opt.zero_grad(set_to_none=True)
        with devices.autocast(precision, "cpu"):
            loss = F.cross_entropy(forward(x).float(), y)
        loss.backward()
        opt.step()
    return step


def step_ratio(size: int, batch_size: int = 128, rounds: int = 10, warmup: int = 2) -> dict:
    """Median ms a step in fp32 and bf16, and the median of the paired per-round ratios fp32 / bf16."""
    steps = {p: raw_step(size, batch_size, p) for p in PRECISIONS}
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {p: [] for p in PRECISIONS}
    for r in range(rounds):
        for p in (PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]):      # alternate the order
            t = time.perf_counter()
            steps[p]()
            times[p].append(time.perf_counter() - t)
    ratios = [a / b for a, b in zip(times["fp32"], times["bf16"])]
    return {"size": size, "fp32_ms": 1e3 * statistics.median(times["fp32"]),
            "bf16_ms": 1e3 * statistics.median(times["bf16"]), "ratio": statistics.median(ratios)}


def loop_share(size: int = 16, batch_size: int = 128, steps: int = 6, epochs: int = 9, precision: str = "bf16") -> dict:
    """The course's training loop (train_stage on augmented chips: loader, augmentation, bookkeeping)
    against the raw step, in the same precision, in alternating blocks: after each epoch of `steps`
    steps of the loop, `steps` raw steps. The share is the median over the epochs of raw ms / loop ms;
    the first epoch is left out, as the raw timer leaves out its warm-up steps (both pay the one-off
    kernel set-up there)."""
    import tempfile

    import torch

    from helpers.datasets.data import ChipSet, train_transform
    from helpers.method.model import shake_shake_26_2x32d
    from helpers.method.training import train_stage
    g = torch.Generator().manual_seed(0)
    n = batch_size * steps                       # one epoch = `steps` full batches
    chips = ChipSet(torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g),
                    torch.arange(n) % 10, [f"c{i}" for i in range(n)], train_transform(size, 0.5, 0.25))
    settings = config.resolve("quick", image_size=size, batch_size=batch_size, device="cpu", precision=precision,
                              warmup_fraction=0.0)
    raw, raw_ms = raw_step(size, batch_size, precision), []
    for _ in range(2):
        raw()

    def raw_block(epoch):
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            raw()
            times.append(time.perf_counter() - t)
        raw_ms.append(1e3 * statistics.median(times))

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        history = train_stage(shake_shake_26_2x32d(), chips, stage="bench", run_dir=Path(tmp), settings=settings,
                              steps=steps * epochs, lr=0.01, progress=False, after_epoch=raw_block)
    loop_ms = (1e3 * history["seconds"] / history["steps"]).tolist()
    shares = [r / l for r, l in zip(raw_ms[1:], loop_ms[1:])]
    return {"size": size, "precision": precision, "loop_ms": statistics.median(loop_ms[1:]),
            "raw_ms": statistics.median(raw_ms[1:]), "share": statistics.median(shares)}


def compile_gain(size: int = 16, batch_size: int = 128, steps: int = 10, precision: str = "bf16") -> dict:
    """torch.compile on the training step: its compile time (first step less a plain step) and the steady
    ms a step, compiled and eager, in `precision`; the steps it takes to win the compile time back."""
    out = {"size": size, "precision": precision}
    for mode in ("eager", "compiled"):
        step = raw_step(size, batch_size, precision, compile=mode == "compiled")
        times = []
        for _ in range(steps + 1):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        out[f"{mode}_first_s"], out[f"{mode}_ms"] = times[0], 1e3 * statistics.median(times[1:])
    out["compile_s"] = out["compiled_first_s"] - out["eager_ms"] / 1e3
    saved = (out["eager_ms"] - out["compiled_ms"]) / 1e3
    out["break_even_steps"] = out["compile_s"] / saved if saved > 0 else float("inf")
    return out


def print_step_times(sizes, with_compile: bool = False) -> None:
    import torch
    load = os.getloadavg()[0]
    print(f"CPU native bf16 (torch's cpuinfo): {devices.cpu_has_native_bf16()}; {torch.get_num_threads()} threads")
    print("| input | fp32 ms / step | bf16 ms / step | fp32 / bf16 (median of paired rounds) |\n|---|---|---|---|")
    for size in sizes:
        r = step_ratio(size)
        print(f"| {size} px | {r['fp32_ms']:,.0f} | {r['bf16_ms']:,.0f} | {r['ratio']:.2f}x |", flush=True)
    share = loop_share()
    print(f"\ncourse loop at {share['size']} px, {share['precision']}: {share['loop_ms']:.0f} ms a step against "
          f"{share['raw_ms']:.0f} ms raw: {share['share']:.0%} of the raw step speed")
    if with_compile:
        c = compile_gain()
        print(f"\ntorch.compile, {c['size']} px, {c['precision']}: {c['compile_s']:.0f} s to compile, then "
              f"{c['compiled_ms']:.0f} ms a step against {c['eager_ms']:.0f} ms eager: won back after "
              f"{c['break_even_steps']:,.0f} steps (the quick course trains 900 full-model steps, in 8 stage folders)")
    print(f"load average (1 min) before / after: {load:.2f} / {os.getloadavg()[0]:.2f}")


# ------------------------------------------------------------------------------------------------ parity
def root_folder(profile: str) -> Path:
    return resolve_path(Path("runs") / f"precision-parity-{profile}")


def train_seed(profile: str, data: str, precision: str, seed: int, overrides: dict) -> pd.DataFrame:
    """Three-stage, plain CE and cRT of one seed in one precision; their test scores (resumes a stopped run)."""
    run_dir, s = runs.open_run(root_folder(profile) / data / precision / f"seed{seed}", profile, data=data, seed=seed,
                               precision=precision, device="cpu", **overrides)
    bundle = load_data(s)
    experiments.train_three_stage(bundle, s, run_dir, progress=False)
    experiments.train_plain(bundle, s, run_dir, progress=False)
    rebalancing.train_crt(bundle, s, run_dir, stages.steps_of(bundle, s, "crt"), progress=False)
    table = experiments.evaluate_methods(bundle, s, run_dir, METHODS)
    table.insert(0, "precision", precision)
    table.insert(0, "seed", seed)
    table.insert(0, "data", data)
    table.to_csv(run_dir / "scores.csv", index=False)
    return table


def collect(profile: str) -> pd.DataFrame:
    files = sorted(root_folder(profile).glob("*/*/seed*/scores.csv"))
    return pd.concat([pd.read_csv(f) for f in files]) if files else pd.DataFrame()


def paired(scores: pd.DataFrame) -> pd.DataFrame:
    """Per method and data set (and both pooled): mean bf16 - fp32 with its 95% t-interval, over seeds."""
    from scipy import stats
    wide = scores.pivot_table(index=["data", "seed", "method"], columns="precision", values="balanced_top1").dropna()
    wide["diff"] = wide["bf16"] - wide["fp32"]
    rows = []
    for method in METHODS:
        m = wide.xs(method, level="method")
        for data, part in [*m.groupby(level="data"), ("both sets", m)]:
            d = part["diff"].to_numpy()
            n = len(d)
            half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
            p = stats.ttest_1samp(d, 0.0).pvalue if n > 1 else float("nan")
            sd = lambda col: part[col].groupby(level="data").std(ddof=1).mean() if n > 1 else float("nan")
            rows.append({"method": method, "data": data, "pairs": n, "fp32_mean": part["fp32"].mean(),
                         "bf16_mean": part["bf16"].mean(), "diff_mean": d.mean(), "ci_low": d.mean() - half,
                         "ci_high": d.mean() + half, "p": p, "fp32_seed_sd": sd("fp32"), "bf16_seed_sd": sd("bf16")})
    return pd.DataFrame(rows)


def parity_markdown(table: pd.DataFrame, profile: str) -> str:
    lines = [f"# bf16 autocast vs fp32, profile {profile}: test balanced top-1, paired by seed\n",
             "| method | data | pairs | fp32 % | bf16 % | bf16 - fp32 (pp) | 95% interval (pp) | p "
             "| seed-to-seed sd, fp32 / bf16 (pp) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['method']} | {r['data']} | {r['pairs']} | {100 * r['fp32_mean']:.1f} | {100 * r['bf16_mean']:.1f} "
                     f"| {100 * r['diff_mean']:+.2f} | [{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}] "
                     f"| {r['p']:.2f} | {100 * r['fp32_seed_sd']:.2f} / {100 * r['bf16_seed_sd']:.2f} |")
    name = lambda rows: ", ".join(f"{m} ({d})" for m, d in zip(rows["method"], rows["data"]))
    worse = table[table["ci_high"] < 0]
    beyond = table[-table["diff_mean"] > table["fp32_seed_sd"]]
    verdict = (f"bf16 costs accuracy: the interval lies below 0 for {name(worse)}" if len(worse) else
               "no interval lies below 0")
    verdict += (f"; the mean loss exceeds the fp32 seed-to-seed sd for {name(beyond)}" if len(beyond) else
                "; no mean loss exceeds the fp32 seed-to-seed sd")
    return "\n".join(lines) + f"\n\n{verdict}.\n"


def parity(profile: str, datas, seeds, overrides: dict, report_only: bool = False, precisions=PRECISIONS) -> pd.DataFrame:
    config.resolve(profile, **overrides)          # a bad setting stops here, before any training
    t0 = time.time()
    if not report_only:
        for data in datas:
            for seed in seeds:
                for precision in precisions:
                    print(f"== {data}, seed {seed}, {precision} ({time.time() - t0:.0f} s so far)", flush=True)
                    train_seed(profile, data, precision, seed, overrides)
    scores = collect(profile)
    if scores.empty:
        raise config.SettingsError(f"nothing trained yet in {root_folder(profile)}: run without --report-only")
    table = paired(scores)
    out = root_folder(profile)
    table.to_csv(out / "parity.csv", index=False)
    text = parity_markdown(table, profile)
    (out / "parity.md").write_text(text)
    print(text)
    print(f"written {out / 'parity.md'} ({time.time() - t0:.0f} s)")
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--step-times", action="store_true")
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    p.add_argument("--compile", action="store_true", help="with --step-times: also measure torch.compile at 16 px")
    p.add_argument("--parity", action="store_true")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", nargs="+", default=["synthetic-sar", "digits-lt"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                   help="train only these (two processes can share the work); the table pairs what is there")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="override a setting")
    a = p.parse_args(argv)
    if a.step_times:
        print_step_times(a.sizes, a.compile)
    if a.parity or a.report_only:
        return cli.guarded(lambda: parity(a.profile, a.data, a.seeds, dict(a.p), a.report_only, a.precisions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
