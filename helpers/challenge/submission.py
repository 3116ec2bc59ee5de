"""Predicting the classes of unlabeled chips with a finished run, and writing a submission for the scorer.

The scorer reads `results.csv`, where `image_id` is the number in the chip's file name (SAR_1234.png,
Gotcha1234.png -> 1234).  PBVS 2023-2025 read `image_id,class_id,score`, the score an in-distribution
confidence for the OOD measure (the run's OOD score, helpers/method/ood.py); the 2021 scorer read
`image_id,class_id` (`-p submission_format 2021`).  This module takes a finished run (its stage-3b
checkpoint complete), reads a flat folder of chips of the run's sensor, predicts with the run's TTA
setting, checks the rows, and writes

    results.csv          image_id,class_id[,score]   (what the scorer reads)
    probabilities.csv    image_id,file,p0..p9 (the averaged TTA softmax, for ensembling or a closer look)
    submission.zip       results.csv alone, ready for upload
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..datasets import archive
from ..method import ood
from ..settings import config
from ..method.checkpoints import CheckpointError, load_stage_model
from ..settings.paths import resolve_path
from .demo import DEMO_FOLDER, DEMO_KEY, demo_chips, score_against_key  # noqa: F401  (callers import them from here)

NUM_CLASSES = 10
SIZE_FACTOR = 2.0          # chips more than 2x larger or smaller than the run's training chips are refused
SIZE_SAMPLE = 64           # training chips whose size on disk is read to know the run's chip size
COLUMNS = {"score": ["image_id", "class_id", "score"], "2021": ["image_id", "class_id"]}
OOD_CHOICE = "ood_score.json"     # the run's OOD score and why, chosen once (ood_choice)


class SubmissionError(ValueError):
    """A run that cannot predict, chips it must not read, or rows the scorer would reject; one line."""


@dataclass
class Prediction:
    results: pd.DataFrame          # image_id, class_id[, score]
    probabilities: pd.DataFrame    # image_id, file, p0..p9
    folder: Path                   # where the files were written
    files: dict                    # name -> path
    notes: list
    score_name: str = ""           # the OOD score in the `score` column (helpers.method.ood)

    @property
    def shares(self) -> np.ndarray:
        return np.bincount(self.results["class_id"], minlength=NUM_CLASSES) / len(self.results)

    @property
    def distance_from_uniform(self) -> float:
        """Total-variation distance of the predicted-class shares from 1/10 (as helpers.method.metrics)."""
        return float(0.5 * np.abs(self.shares - 1 / NUM_CLASSES).sum())


# ---------------------------------------------------------------- the run
def run_settings(run_dir) -> config.Settings:
    """The resolved settings a run folder was made with."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.is_file():
        raise SubmissionError(f"{run_dir} is not a run folder (no config.json); give a folder made by the course, "
                              f"e.g. runs/quick")
    saved = json.loads(path.read_text())
    return config.resolve(saved["profile"], **saved["settings"])


def final_model(run_dir):
    """The run's stage-3b model; an unfinished run is a one-line SubmissionError."""
    try:
        return load_stage_model(run_dir, "stage3b", num_classes=NUM_CLASSES)
    except CheckpointError as e:
        raise SubmissionError(f"run {run_dir} is not finished, so it cannot predict: {e}") from None


def _side(path) -> int:
    with Image.open(path) as img:      # reads the header only
        return max(img.size)


def normalisation(run_dir, settings, bundle=None) -> dict:
    """The run's input normalisation and training-chip size, cached in <run_dir>/normalisation.json.

    Training normalises with the training chips' mean and std, which the checkpoint does not hold;
    the first call loads the run's data (or takes `bundle`) to recompute them, exactly as training did.
    """
    path = Path(run_dir) / "normalisation.json"
    if path.is_file():
        return json.loads(path.read_text())
    if bundle is None:
        from ..datasets.data import load_data
        bundle = load_data(settings)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(bundle.train.paths), min(SIZE_SAMPLE, len(bundle.train.paths)), replace=False)
    info = {"mean": bundle.mean, "std": bundle.std, "image_size": settings.image_size, "modality": settings.modality,
            "chip_side": int(np.median([_side(bundle.train.paths[i]) for i in sample]))}
    config.save_json(info, path)
    return info


# ---------------------------------------------------------------- the chips
def find_chips(folder, modality: str) -> list[Path]:
    """The run's sensor's chips in a flat folder; another sensor's chips only is a SubmissionError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"chip folder {folder} does not exist; give a flat folder of chips such as "
                              f"<archive>/test_images")
    chips, left = archive.flat_chips(folder, modality)
    if not chips:
        other = [m for m in archive.MODALITIES if m != modality][0]
        if left["other modality"]:
            raise SubmissionError(f"the chips in {folder} are {other.upper()} chips ({archive.PREFIXES[other]} prefix), "
                                  f"but the run was trained on {modality.upper()} (modality {modality!r}); give the "
                                  f"{modality.upper()} chips, or a run trained with -p modality {other}")
        raise SubmissionError(f"no image chips in {folder}; expected a flat folder of {archive.PREFIXES[modality]}<id>.png "
                              f"files" + (" (it holds sub-folders: give the folder of chips itself)" if left["folders"] else ""))
    return chips


def check_sizes(chips, chip_side: int, factor: float = SIZE_FACTOR) -> None:
    """Refuse chips far from the run's training chips' size (another sensor or product)."""
    for path in chips:
        side = _side(path)
        if side > factor * chip_side or side < chip_side / factor:
            raise SubmissionError(f"chip {path} is {side} px, the run was trained on chips of about {chip_side} px "
                                  f"(more than {factor:g}x apart): these are not chips of the run's kind")


def check_results(results: pd.DataFrame, chips) -> None:
    """Every chip exactly one row, ids unique, classes whole numbers 0-9, a finite score where there is
    a score column: what the scorer needs."""
    if list(results.columns) not in COLUMNS.values():
        raise SubmissionError(f"results have columns {list(results.columns)}; expected image_id,class_id,score "
                              f"(or image_id,class_id, the 2021 form)")
    if "score" in results.columns and not np.isfinite(pd.to_numeric(results["score"], errors="coerce")).all():
        raise SubmissionError("a score is missing or not a finite number; every row needs one in-distribution score")
    if len(results) != len(chips):
        raise SubmissionError(f"{len(results)} rows for {len(chips)} chips; every chip needs exactly one row")
    duplicated = results["image_id"][results["image_id"].duplicated()]
    if len(duplicated):
        same = [Path(c).name for c, i in zip(chips, results["image_id"]) if i == duplicated.iloc[0]]
        raise SubmissionError(f"image_id {duplicated.iloc[0]} occurs {len(same)} times ({', '.join(same[:3])}); "
                              f"ids must be unique, one file per id")
    if not pd.api.types.is_integer_dtype(results["class_id"]) or not results["class_id"].between(0, NUM_CLASSES - 1).all():
        bad = results["class_id"][~results["class_id"].isin(range(NUM_CLASSES))]
        shown = repr(bad.tolist()[0]) if len(bad) else f"of type {results['class_id'].dtype}"
        raise SubmissionError(f"class_id {shown} is not a class number 0-9; expected whole numbers 0-9")


# ---------------------------------------------------------------- predict and write
def predict_folder(run_dir, images, out=None, device=None, bundle=None) -> Prediction:
    """Predict every chip of `images` with the run's final model and TTA views; write the submission files."""
    from ..datasets import data
    from ..method import inference
    run_dir = resolve_path(run_dir)
    settings = run_settings(run_dir)
    model = final_model(run_dir)
    chips = find_chips(resolve_path(images), settings.modality)
    try:
        ids = [archive.image_id(p) for p in chips]
    except archive.ArchiveError as e:
        raise SubmissionError(str(e)) from None
    check_results(pd.DataFrame({"image_id": ids, "class_id": np.zeros(len(ids), np.int64)}), chips)   # ids, before any work
    info = normalisation(run_dir, settings, bundle)
    check_sizes(chips, info["chip_side"])
    notes = []
    try:
        chipset = data.decode([(p, -1) for p in chips], settings.image_size, notes, desc="chips")
    except data.DataError as e:
        raise SubmissionError(str(e)) from None
    chipset = chipset.with_transform(data.eval_transform(info["mean"], info["std"]))
    flip = data.flip_keeps_label(settings.data)
    logits = inference.view_logits(model, chipset, k=settings.tta_views, device=device or settings.device,
                                   flip=flip, precision=settings.precision)
    probs = torch.softmax(logits, dim=-1).mean(0).numpy()      # as inference.predict averages the views
    score_name = ood_choice(run_dir, settings, model, bundle, device)
    results = pd.DataFrame({"image_id": ids, "class_id": probs.argmax(1).astype(np.int64),
                            "score": ood.score(logits, score_name).round(6)})[COLUMNS[settings.submission_format]]
    check_results(results, chips)
    probabilities = pd.DataFrame(probs.round(6), columns=[f"p{c}" for c in range(NUM_CLASSES)])
    probabilities.insert(0, "file", [p.name for p in chips])
    probabilities.insert(0, "image_id", ids)
    folder = resolve_path(out) if out is not None else run_dir / "submission"
    return Prediction(results, probabilities, folder, write_submission(results, probabilities, folder), notes,
                      score_name)


def ood_choice(run_dir, settings, model, bundle=None, device=None) -> str:
    """The run's OOD score: the `ood_score` setting, or for "auto" the best validation AUROC of the final
    model where the data has OOD validation chips (else ood.DEFAULT); chosen once, kept in OOD_CHOICE."""
    path = Path(run_dir) / OOD_CHOICE
    if settings.ood_score != "auto":
        return settings.ood_score
    if path.is_file():
        return json.loads(path.read_text())["score"]
    from ..datasets.data import flip_keeps_label, load_data
    from ..method import inference
    bundle = bundle if bundle is not None else load_data(settings)
    val_id = val_ood = None
    if bundle.ood_val is not None:
        run = lambda ds: inference.view_logits(model, ds, k=settings.tta_views, device=device or settings.device,
                                               flip=flip_keeps_label(settings.data), precision=settings.precision)
        val_id, val_ood = run(bundle.val), run(bundle.ood_val)
    name, why = ood.choose("auto", val_id, val_ood)
    config.save_json({"score": name, "why": why}, path)
    return name


def write_submission(results: pd.DataFrame, probabilities: pd.DataFrame, folder) -> dict:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"results.csv": folder / "results.csv", "probabilities.csv": folder / "probabilities.csv",
             "submission.zip": folder / "submission.zip"}
    results.to_csv(files["results.csv"], index=False)
    probabilities.to_csv(files["probabilities.csv"], index=False)
    with zipfile.ZipFile(files["submission.zip"], "w", zipfile.ZIP_DEFLATED) as z:
        z.write(files["results.csv"], arcname="results.csv")   # the scorer wants results.csv at the top
    return files


# ---------------------------------------------------------------- which chips, when none are given
def prediction_sets(settings, run_dir, bundle=None) -> dict:
    """Every set of chips to predict, name -> flat folder: the data's own prediction sets (test_images/,
    then valid_images/; test/, then val/ in the 2023-2025 layout), or, on built-in data only, a demo folder
    written from the test split (and its OOD chips: helpers/challenge/demo.py)."""
    from ..datasets.data import BUILT_IN
    if settings.data not in BUILT_IN:
        layout = archive.detect(resolve_path(settings.data), settings.modality)
        found = layout.prediction_sets
        ordered = {n: found[n] for n in ("test_images", "test", "valid_images", "val", "valid", "validation") if n in found}
        if ordered:
            return ordered
    return {"demo": demo_chips(run_dir, settings, bundle)}


def default_images(settings, run_dir, bundle=None) -> Path:
    """The first of `prediction_sets`: the archive's test_images/ (else valid_images/), or the demo folder."""
    return next(iter(prediction_sets(settings, run_dir, bundle).values()))


def predict_every_set(run_dir, settings, bundle, done=None) -> pd.DataFrame:
    """A submission for each of the data's prediction sets: the first in <run>/submission/ (as `done`,
    the notebook's own prediction, when given), the others in <run>/submission/<set>/. One row per set."""
    rows = []
    for i, (name, folder) in enumerate(prediction_sets(settings, run_dir, bundle).items()):
        if i == 0 and done is not None:
            p = done
        else:
            p = predict_folder(run_dir, folder, out=None if i == 0 else Path(run_dir) / "submission" / name,
                               device=settings.device, bundle=bundle)
        rows.append({"set": name, "folder": str(folder), "chips": len(p.results),
                     "results.csv": str(p.files["results.csv"]), "distance_from_uniform": p.distance_from_uniform})
    return pd.DataFrame(rows)
