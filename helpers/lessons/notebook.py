"""What every notebook does first, in one line:

    run_dir, settings, bundle = helpers.lessons.notebook.setup(globals())

reads the parameters cell (`run_dir`, `profile` and any setting, e.g. `data`, `seed`, `device`),
opens the run folder (`helpers.method.runs.open_run`), shows the settings that matter and loads the data.

Progress bars (tqdm.auto) are widgets in JupyterLab (ipywidgets is pinned); in a headless run the
runner starts the kernels with TQDM_DISABLE=1 and `setup` then switches every bar off, including
those that pass their own `disable=` (see `helpers.publishing.runner`), so the executed notebooks stay readable.
"""
from __future__ import annotations

import os

KEY_SETTINGS = ["data", "data_size", "image_size", "batch_size", "stage1_steps", "stage2_steps", "stage3_per_class",
                "stage3a_steps", "stage3b_steps", "budget_scale", "tta_views", "embed_points", "seed"]


def setup(namespace: dict, load: bool = True):
    """(run folder, settings, data bundle) for the notebook whose globals are `namespace`.

    `load=False` skips loading the data (the audit reads the files itself first); bundle is then None.
    """
    from IPython.display import Markdown, display

    from ..settings import config
    from ..method import runs
    from ..datasets import data
    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        quiet_progress_bars()
    run_dir, settings = runs.open_run(namespace.get("run_dir", "runs/quick"), namespace.get("profile", "quick"),
                                      **config.overrides_from(namespace))
    display(show_settings(run_dir, settings))
    bundle = None
    if load:
        bundle = data.load_data(settings)
        for note in bundle.notes:
            print("note:", note)
        from .evaluation import measured_banner
        banner = measured_banner(bundle)
        if banner:
            display(Markdown(banner))
        print(f"{bundle.name}: {len(bundle.train):,} training, {len(bundle.val):,} validation, "
              f"{len(bundle.test):,} test chips of {settings.image_size} x {settings.image_size} px")
    return run_dir, settings, bundle


def quiet_progress_bars() -> None:
    """Every tqdm.auto bar of this process disabled, even one created with an explicit `disable=False`."""
    import functools

    from tqdm.auto import tqdm
    if getattr(tqdm.__init__, "_quiet", False):
        return
    init = tqdm.__init__

    @functools.wraps(init)
    def quiet(self, *args, **kwargs):
        kwargs["disable"] = True
        init(self, *args, **kwargs)
    quiet._quiet = True
    tqdm.__init__ = quiet


def show_settings(run_dir, settings):
    """Print the run folder and device; return the settings that matter as a table."""
    import pandas as pd
    import torch

    from ..method.devices import pick_device, resolve_precision
    device = pick_device(settings.device)
    print(f"run folder: {run_dir}")
    print(f"device: {device} ({torch.get_num_threads()} CPU threads), precision "
          f"{resolve_precision(settings.precision, device)} (setting {settings.precision!r}), torch {torch.__version__}")
    return pd.DataFrame({"value": {k: getattr(settings, k) for k in KEY_SETTINGS}})


def scale_table(settings, bundle=None):
    """What this run scales down from the paper's schedule (the `paper` profile), read from the settings."""
    import pandas as pd

    from ..method import budget
    from ..settings import config
    from ..method.samplers import without_class0
    from ..datasets.synthetic_sar import MAVOC_TRAIN_COUNTS
    paper = config.resolve("paper")
    ours = (len(bundle.train), len(without_class0(bundle.train))) if bundle is not None else (settings.data_size, settings.data_size)
    steps = budget.schedule(settings, budget.set_sizes(*ours, settings))
    paper_steps = budget.schedule(paper, budget.set_sizes(sum(MAVOC_TRAIN_COUNTS), sum(MAVOC_TRAIN_COUNTS[1:]), paper))
    rows = [("input size (px)", paper.image_size, settings.image_size),
            ("training chips", sum(MAVOC_TRAIN_COUNTS), ours[0]),
            ("stage 1 optimizer steps (all data)", paper_steps["stage1"], steps["stage1"]),
            ("stage 2 optimizer steps (class 0 removed)", paper_steps["stage2"], steps["stage2"]),
            ("stage 3 images per class", paper.stage3_per_class, settings.stage3_per_class),
            ("stage 3a optimizer steps (whole model)", paper_steps["stage3a"], steps["stage3a"]),
            ("stage 3b optimizer steps (classifier only)", paper_steps["stage3b"], steps["stage3b"]),
            ("TTA views", paper.tta_views, settings.tta_views),
            ("batch size", paper.batch_size, settings.batch_size)]
    table = pd.DataFrame(rows, columns=["what", "paper", "this run"]).set_index("what")
    table["this run / paper"] = (table["this run"] / table["paper"]).map(lambda r: f"{r:.3g}x")
    return table


def markdown(text: str):
    """Show `text` as Markdown (a takeaway computed from the run)."""
    from IPython.display import Markdown, display
    display(Markdown(text))


def mark(held: bool) -> str:
    """✓ or ✗ for a takeaway that holds or not in this run."""
    return "✓ holds in this run" if held else "✗ does not hold in this run"
