"""One source of truth for every setting: the defaults below, overridden by a profile YAML, then by the user.

Profiles live in `helpers/settings/profiles/<name>.yaml` and only list what they change.  The resolved
settings are saved beside each run (`config.json`) together with the environment (`env.json`).
"""
from __future__ import annotations

import dataclasses
import json
import platform
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

PROFILE_DIR = Path(__file__).with_name("profiles")
# Settings that may differ between the notebooks of one run (not compared when a run folder is reopened).
# `precision` is among them: a stage's checkpoint records the precision it was *resolved* to and resumes only under it.
NOT_COMPARED = {"device", "num_workers", "train_processes", "notebook_ablations", "precision", "ood_score", "submission_format"}


class SettingsError(ValueError):
    """A bad profile name, setting name or value; the message says what is valid."""


@dataclass
class Settings:
    # --- data ---
    data: str = "synthetic-sar"      # "synthetic-sar", "digits-lt", or a path to MAVOC-style folders / CSV
    data_size: int = 5000            # synthetic-sar: training images in all (class shares as in MAVOC)
    val_per_class: int = 20          # built-in data: class-balanced validation images per class
    test_per_class: int = 50         # built-in data: class-balanced test images per class
    digits_imbalance: float = 25.0   # digits-lt: n_max / n_min of the exponential profile
    data_seed: int = 0               # the data never changes with the training seed
    image_size: int = 32             # chips are resized to image_size x image_size
    modality: str = "sar"            # MAVOC archive: the sensor kept, "sar" or "eo" (by the SAR_/EO_ file prefix)
    test_labels: str = ""            # a CSV image_id,class_id: those chips of the data's flat prediction set (valid_images/ ...) are the test split
    class_order: str = ""            # class folders named by name: their class_id order, comma-separated ("" = the archive's class list, else sorted names)
    # --- optimisation (SGD + momentum, cosine LR) ---
    batch_size: int = 128            # the global batch: a data-parallel run (helpers.train) splits it evenly over its processes
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_reference_batch: int = 0      # 0: the stage learning rates are for `batch_size` as it is; N > 0: each is scaled by batch_size / N (linear scaling rule)
    sync_batchnorm: bool = True      # data-parallel runs: BatchNorm statistics of the global batch (SyncBatchNorm), so N processes train as one does
    # A stage's budget is counted in optimizer steps: `stageX_steps` if > 0, else
    # ceil(stageX_epochs x its set size / batch_size); then x budget_scale (helpers/method/budget.py).
    stage1_epochs: int = 20
    stage1_steps: int = 0
    stage1_lr: float = 0.1
    stage2_epochs: int = 100
    stage2_steps: int = 0
    stage2_lr: float = 0.05
    stage3_per_class: int = 5000     # images per class in the balanced stage-3 set
    stage3a_epochs: int = 20
    stage3a_steps: int = 0
    stage3a_lr: float = 0.01
    stage3b_epochs: int = 10
    stage3b_steps: int = 0           # classifier-only steps; cRT and LWS get the same
    stage3b_lr: float = 0.01         # the classifier-only learning rate when classifier_lr_grid is empty
    classifier_lr_grid: list = field(default_factory=lambda: [0.01, 0.05, 0.2])  # every classifier-only stage (3b, cRT, LWS) trains at each and keeps the best on validation's tuning half (helpers/method/classifier_lr.py); [] = stage3b_lr, untuned
    budget_scale: float = 1.0        # multiplies every stage's steps (the budget sweep: 1, 2, 4)
    warmup_fraction: float = 0.05    # linear warm-up over this share of a stage's steps, then cosine to 0
    min_stage_steps: int = 30        # fewer steps than this: a one-line warning (schedule and BatchNorm unsettled)
    # --- evaluation and plots ---
    tta_views: int = 3
    embed_points: int = 2000         # test images embedded by t-SNE / UMAP
    latency_rounds: int = 10         # notebook 04's batch-of-one latency (claim 4): the median of this many timed rounds
    notebook_ablations: bool = False # notebook 04 trains the stage ablations and the extra rivals (balanced fine-tune + cRT, Balanced Softmax, frozen-BN cRT/LWS) itself; the multi-seed comparison always has them
    ood_score: str = "auto"          # the submission's in-distribution score: "msp", "max_logit", "energy", or "auto" (best validation AUROC where an OOD validation set exists, else max_logit)
    submission_format: str = "score" # results.csv columns: "score" (image_id,class_id,score: PBVS 2023-2025) or "2021" (image_id,class_id)
    # --- baselines: each as its paper defines it, at the three-stage path's budget (helpers/evidence/experiments.py) ---
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    drw_start_fraction: float = 0.8  # LDAM-DRW: re-weighting starts after this share of the steps
    drw_beta: float = 0.9999
    seeds: list = field(default_factory=lambda: [0, 1, 2, 3, 4])  # multi-seed comparison (5 seeds: a paired t-interval with 4 degrees of freedom)
    # --- run ---
    seed: int = 0
    device: str = "auto"
    channels_last: bool = True
    precision: str = "auto"          # "auto": bf16 autocast where the CPU or CUDA card computes bf16 natively (fp16 + GradScaler on CUDA without bf16), fp32 elsewhere; or "fp32", "bf16", "fp16" (helpers/method/devices.py)
    num_workers: int = 0
    train_processes: int = 0         # notebook 04's and each comparison seed's independent trainings side by side: 0 = auto (2 processes on a CPU with 2+ torch threads, 1 on a GPU), N = N (helpers/evidence/parallel_training.py)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


POSITIVE_INTS = ["data_size", "val_per_class", "test_per_class", "image_size", "batch_size",
                 "stage1_epochs", "stage2_epochs", "stage3_per_class", "stage3a_epochs",
                 "stage3b_epochs", "tta_views", "embed_points", "latency_rounds", "min_stage_steps"]
POSITIVE_FLOATS = ["stage1_lr", "stage2_lr", "stage3a_lr", "stage3b_lr", "digits_imbalance", "ldam_scale", "budget_scale"]
NON_NEGATIVE = ["num_workers", "train_processes", "weight_decay", "momentum", "ldam_max_margin", "drw_start_fraction", "drw_beta",
                "stage1_steps", "stage2_steps", "stage3a_steps", "stage3b_steps", "warmup_fraction", "lr_reference_batch"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OOD_SCORES = ("auto", "msp", "max_logit", "energy")     # helpers/method/ood.py
SUBMISSION_FORMATS = ("score", "2021")
FLOAT_LISTS = {"classifier_lr_grid"}     # list settings of numbers (the others are lists of whole numbers)


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _coerce(name: str, value, default):
    """Papermill and the command line give strings; turn them into the default's type."""
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"setting {name!r} must be true or false, got {value!r}")
        return bool(value)
    try:
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, list):
            if isinstance(value, str):
                value = value.replace(",", " ").replace("[", " ").replace("]", " ").split()
            return [float(v) for v in value] if name in FLOAT_LISTS else [int(v) for v in value]
    except (TypeError, ValueError):
        kind = {int: "whole number", float: "number", list: "list of numbers" if name in FLOAT_LISTS else "list of whole numbers"
                }.get(type(default), type(default).__name__)
        raise SettingsError(f"setting {name!r} must be a {kind}, got {value!r}") from None
    return str(value)


def resolve(profile: str = "quick", **overrides) -> Settings:
    """Defaults <- profile YAML <- overrides (None means 'keep the profile value')."""
    if profile not in profile_names():
        raise SettingsError(f"unknown profile {profile!r}; valid profiles: {', '.join(profile_names())}")
    values = yaml.safe_load((PROFILE_DIR / f"{profile}.yaml").read_text()) or {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(setting_names()))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; valid settings: {', '.join(setting_names())}")
    defaults = Settings()
    settings = Settings(**{k: _coerce(k, v, getattr(defaults, k)) for k, v in values.items()})
    for name in POSITIVE_INTS + POSITIVE_FLOATS:
        if getattr(settings, name) <= 0:
            raise SettingsError(f"setting {name!r} must be > 0, got {getattr(settings, name)}")
    for name in NON_NEGATIVE:
        if getattr(settings, name) < 0:
            raise SettingsError(f"setting {name!r} must be >= 0, got {getattr(settings, name)}")
    if settings.modality not in ("sar", "eo"):
        raise SettingsError(f"setting 'modality' must be 'sar' or 'eo', got {settings.modality!r}")
    if any(lr <= 0 for lr in settings.classifier_lr_grid):
        raise SettingsError(f"setting 'classifier_lr_grid' must hold learning rates > 0, got {settings.classifier_lr_grid}")
    if settings.tta_views > 3:
        raise SettingsError(f"tta_views must be 1, 2 or 3, got {settings.tta_views}")
    if settings.warmup_fraction >= 1 or settings.drw_start_fraction >= 1:
        raise SettingsError("warmup_fraction and drw_start_fraction must be below 1 (shares of a stage's steps)")
    for stage in ("stage1", "stage2", "stage3a", "stage3b"):
        given = {k for k, v in overrides.items() if v is not None}
        if f"{stage}_epochs" in given and f"{stage}_steps" not in given and getattr(settings, f"{stage}_steps") > 0:
            warnings.warn(f"{stage}_epochs is ignored: profile {profile!r} gives {stage}_steps="
                          f"{getattr(settings, f'{stage}_steps')}; set {stage}_steps instead", stacklevel=2)
    if settings.ood_score not in OOD_SCORES:
        raise SettingsError(f"setting 'ood_score' must be one of {', '.join(OOD_SCORES)}, got {settings.ood_score!r}")
    if settings.submission_format not in SUBMISSION_FORMATS:
        raise SettingsError(f"setting 'submission_format' must be one of {', '.join(SUBMISSION_FORMATS)}, "
                            f"got {settings.submission_format!r}")
    if settings.precision not in PRECISIONS:
        raise SettingsError(f"setting 'precision' must be one of {', '.join(PRECISIONS)}, got {settings.precision!r}")
    return settings


def overrides_from(namespace: dict) -> dict:
    """Pick the settings a notebook was given (papermill `-p name value` lands in the notebook's globals)."""
    return {k: namespace[k] for k in setting_names() if k in namespace and namespace[k] is not None}


def environment_info(device: str) -> dict:
    import numpy
    import sklearn
    import torch
    import torchvision
    info = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
            "device": device, "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def save_json(obj, path: Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    tmp.replace(path)
