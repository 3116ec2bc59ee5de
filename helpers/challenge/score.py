"""The local scorer: a submission against a reference, as PBVS 2023-2025 score it.

    python -m helpers.score results.csv reference.csv

results.csv:   image_id,class_id,score   (or image_id,class_id, the 2021 form: no OOD measure then)
reference.csv: image_id,class_id[,ood]   (ood 1 on a chip of none of the 10 classes; its class_id is ignored)

Prints accuracy and balanced accuracy (over the in-distribution chips), the AUROC of the score at
telling in-distribution from OOD chips and the FPR at 95 % TPR (where the reference has OOD chips
and the results a score), and the challenge total 0.75 x accuracy + 0.25 x AUROC.  Missing, extra
or duplicate ids stop it with one line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from ..method import ood


class ScoreError(ValueError):
    """A results or reference file the scorer cannot score; one line."""


def _read(path, needed: list, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{what} {path} does not exist")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ScoreError(f"cannot read {what} {path} as CSV ({type(e).__name__})") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ScoreError(f"{what} {path.name} has columns {list(table.columns)}; expected {','.join(needed)}")
    dup = table["image_id"][table["image_id"].duplicated()]
    if len(dup):
        raise ScoreError(f"{what} {path.name}: image_id {dup.iloc[0]} occurs {int((table['image_id'] == dup.iloc[0]).sum())} "
                         f"times; every id must occur once")
    return table


def score(results_csv, reference_csv) -> dict:
    """{accuracy, balanced_accuracy, auroc, fpr95, total, chips, ood_chips} (None where not measurable)."""
    results = _read(results_csv, ["image_id", "class_id"], "results")
    reference = _read(reference_csv, ["image_id", "class_id"], "reference")
    missing = sorted(set(reference["image_id"]) - set(results["image_id"]))
    extra = sorted(set(results["image_id"]) - set(reference["image_id"]))
    if missing:
        raise ScoreError(f"results lack {len(missing)} id(s) of the reference (e.g. {', '.join(map(str, missing[:5]))})")
    if extra:
        raise ScoreError(f"results have {len(extra)} id(s) that the reference does not (e.g. {', '.join(map(str, extra[:5]))})")
    merged = reference.merge(results, on="image_id", suffixes=("_true", "_pred"), validate="one_to_one")
    is_ood = merged["ood"].astype(int).to_numpy() == 1 if "ood" in merged.columns else np.zeros(len(merged), bool)
    known = merged[~is_ood]
    out = {"chips": int(len(merged)), "ood_chips": int(is_ood.sum()),
           "accuracy": float(accuracy_score(known["class_id_true"], known["class_id_pred"])),
           "balanced_accuracy": float(balanced_accuracy_score(known["class_id_true"], known["class_id_pred"])),
           "auroc": None, "fpr95": None, "total": None}
    if is_ood.any() and "score" in merged.columns:
        s = pd.to_numeric(merged["score"], errors="coerce").to_numpy()
        if not np.isfinite(s).all():
            raise ScoreError("results: a score is missing or not a finite number")
        out["auroc"] = ood.auroc(s[~is_ood], s[is_ood])
        out["fpr95"] = ood.fpr_at_95_tpr(s[~is_ood], s[is_ood])
        out["total"] = ood.challenge_total(out["accuracy"], out["auroc"])
    return out


def lines(r: dict) -> list[str]:
    out = [f"chips: {r['chips']} ({r['ood_chips']} out of distribution)",
           f"accuracy: {r['accuracy']:.4f}", f"balanced accuracy: {r['balanced_accuracy']:.4f}"]
    if r["auroc"] is None:
        why = "the reference has no OOD chips" if not r["ood_chips"] else "the results have no score column"
        return out + [f"OOD AUROC: not measured ({why}); no challenge total"]
    return out + [f"OOD AUROC: {r['auroc']:.4f}", f"FPR at 95% TPR: {r['fpr95']:.4f}",
                  f"total (0.75 x accuracy + 0.25 x AUROC): {r['total']:.4f}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="results.csv: image_id,class_id,score")
    parser.add_argument("reference", help="reference.csv: image_id,class_id[,ood]")
    args = parser.parse_args(argv)
    try:
        result = score(args.results, args.reference)
    except ScoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
