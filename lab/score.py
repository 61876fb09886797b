"""``collections lab train``: fit the recovery score on lab outcomes.

Each run directory (``lab run --out DIR``) gives one row per account: what
was known when the debt defaulted (its default event in
``DIR/population.jsonl``: amount, age, income, region, the grade upstream
gave, asset-flight risk) and whether the case closed ``paid`` within 90
days (``DIR/lab.db``, the run's record).  The model is a scikit-learn
Pipeline: one-hot for region and grade, scaled numbers, logistic
regression.  Its AUC is measured on a held-out lab population: the last
run given when there are several (another seed: debtors the model never
saw), else a quarter of the one run's debtors.  **It is measured on
simulated debtors**: it says how well the score ranks the lab's patterns,
not real people.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from activities.score_activities import CATEGORICAL, FEATURES, MODEL_KIND, load_model, matrix, predict
from db.session import Database
from lab.report import outcomes


class TrainError(ValueError):
    """Runs that cannot train a model: one line, exit 2, nothing written."""


@dataclass
class Trained:
    path: Path
    auc: float
    train_rows: int
    held_out_rows: int
    held_out: str  # what the AUC was measured on


async def rows_of(run: Path) -> list[dict[str, Any]]:
    db_file, population = run / "lab.db", run / "population.jsonl"
    if not db_file.is_file() or not population.is_file():
        raise TrainError(f"{run} is not a lab run directory (no lab.db and population.jsonl): "
                         "`collections lab run --out DIR` makes one")
    async with Database(f"sqlite+aiosqlite:///{db_file.resolve()}") as db:
        return await outcomes(db, population)


def pipeline() -> Pipeline:
    cat = [FEATURES.index(c) for c in CATEGORICAL]
    num = [i for i, f in enumerate(FEATURES) if f not in CATEGORICAL]
    columns = ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), cat),
                                 ("scaled", StandardScaler(), num)])
    return Pipeline([("columns", columns), ("classify", LogisticRegression(max_iter=1000))])


def _split(runs: list[list[dict[str, Any]]], seed: int) -> tuple[list, list, str]:
    if len(runs) > 1:
        return [r for run in runs[:-1] for r in run], runs[-1], "the last run given: another population"
    rows = list(runs[0])
    random.Random(seed).shuffle(rows)
    cut = max(1, len(rows) // 4)
    return rows[cut:], rows[:cut], "a quarter of the run's accounts, held out"


def _both_classes(rows: list[dict[str, Any]], what: str) -> None:
    labels = {r["recovered_90d"] for r in rows}
    if labels != {0, 1}:
        raise TrainError(f"the {what} has {'only recovered' if labels == {1} else 'no recovered'} accounts: "
                         "run more debtors or more days")


async def train(runs: list[Path], out: Path, seed: int = 0) -> Trained:
    if not runs:
        raise TrainError("give at least one run directory (--runs DIR)")
    data = [await rows_of(run) for run in runs]
    fit_rows, test_rows, held_out = _split(data, seed)
    _both_classes(fit_rows, "training data")
    _both_classes(test_rows, "held-out population")
    model = pipeline().fit(matrix(fit_rows), [r["recovered_90d"] for r in fit_rows])
    bundle = {"kind": MODEL_KIND, "features": FEATURES, "pipeline": model, "runs": [str(r) for r in runs]}
    auc = roc_auc_score([r["recovered_90d"] for r in test_rows], predict(bundle, test_rows))
    bundle.update(auc=round(float(auc), 4), held_out=held_out, measured_on="simulated debtors (lab runs)",
                  train_rows=len(fit_rows), held_out_rows=len(test_rows))
    joblib.dump(bundle, out)
    load_model(out)  # what the worker will load: checked now
    return Trained(out, round(float(auc), 4), len(fit_rows), len(test_rows), held_out)


def describe(t: Trained) -> str:
    return (f"wrote {t.path}: AUC {t.auc:.3f} on {t.held_out_rows} held-out accounts ({t.held_out}); "
            f"trained on {t.train_rows} accounts. Measured on simulated debtors, not real ones.")


def summary_json(t: Trained) -> str:
    return json.dumps({"model": str(t.path), "auc": t.auc, "train_rows": t.train_rows,
                       "held_out_rows": t.held_out_rows, "held_out": t.held_out,
                       "measured_on": "simulated debtors"})
