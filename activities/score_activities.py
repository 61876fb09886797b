"""The recovery score (issue 14): a case scored when it opens.

A model trained by ``collections lab train`` (:mod:`lab.score`) predicts,
from what is known when a debt defaults, the probability that the debt is
recovered within 90 days.  With ``COLLECTIONS_SCORE_MODEL`` set, the worker
loads the model once (:func:`load_model`; a file of the wrong shape is a
:class:`ScoreModelError`, one line) and the ``score_case`` activity computes
a case's score from the debtor's database row (age, income, region: the
personal data stays here) and the case's input (amount, grade given
upstream, asset-flight risk).  The case holds only the number.

The model file is a joblib dict: ``kind`` = :data:`MODEL_KIND`, ``features``
= :data:`FEATURES`, ``pipeline`` (a scikit-learn estimator with
``predict_proba`` over an object array of those columns, :func:`matrix`), ``auc`` and what it
was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio import activity

from db.models import Debtor
from db.session import Database

MODEL_KIND = "collections-recovery-score"
FEATURES = ("amount", "age", "income", "region", "grade", "asset_flight_risk")
CATEGORICAL = ("region", "grade")


class ScoreModelError(ValueError):
    """A model file that cannot be used, with the reason (one line)."""


@dataclass
class ScoreRequest:
    account_id: str
    debtor_id: str
    amount_due: str
    grade: str | None  # the grade upstream gave, if any (not the case's own)
    asset_flight_risk: bool


def features(amount: Any, age: Any, income: Any, region: str, grade: str | None,
             asset_flight_risk: bool) -> dict[str, Any]:
    """One row of the score's inputs (training and scoring use this one function)."""
    return {"amount": float(Decimal(str(amount))), "age": int(age), "income": float(Decimal(str(income or 0))),
            "region": str(region), "grade": grade or "", "asset_flight_risk": int(bool(asset_flight_risk))}


def load_model(path: str | Path) -> dict[str, Any]:
    """The model in ``path``, checked for its shape; :class:`ScoreModelError` otherwise."""
    import joblib  # only a worker with a model pays for scikit-learn

    try:
        model = joblib.load(path)
    except FileNotFoundError:
        raise ScoreModelError(f"score model {path} does not exist") from None
    except Exception as e:  # noqa: BLE001 - pickle, zlib, EOF...: any unreadable file is one line
        raise ScoreModelError(f"score model {path} is not a joblib model file ({type(e).__name__}: {e})"[:300]) \
            from None
    if not isinstance(model, dict) or model.get("kind") != MODEL_KIND:
        raise ScoreModelError(f"score model {path} is not a recovery score model (`collections lab train` "
                              "writes one)")
    if tuple(model.get("features") or ()) != FEATURES:
        raise ScoreModelError(f"score model {path} expects features {model.get('features')}, "
                              f"not {list(FEATURES)}: train it again with `collections lab train`")
    if not callable(getattr(model.get("pipeline"), "predict_proba", None)):
        raise ScoreModelError(f"score model {path} holds no classifier with predict_proba")
    try:  # a pipeline fitted on other columns fails here, not on the first case
        predict(model, [features(1000, 40, 3000, "CN-GD", "II", False)])
    except Exception as e:  # noqa: BLE001 - whatever the estimator raises
        raise ScoreModelError(f"score model {path} cannot score a case: {e}"[:300]) from None
    return model


def matrix(rows: list[dict[str, Any]]) -> Any:
    """Rows as the estimator's input: an object array, columns in :data:`FEATURES` order."""
    import numpy as np

    return np.array([[row[f] for f in FEATURES] for row in rows], dtype=object)


def predict(model: dict[str, Any], rows: list[dict[str, Any]]) -> list[float]:
    return [round(float(p), 4) for p in model["pipeline"].predict_proba(matrix(rows))[:, 1]]


class ScoreActivities:
    def __init__(self, db: Database, model: dict[str, Any] | None) -> None:
        self.db = db
        self.model = model  # loaded once, by the worker

    @activity.defn(name="score_case")
    async def score_case(self, req: ScoreRequest) -> float | None:
        """The case's recovery score (0..1), or None without a model or a debtor row."""
        if self.model is None:
            return None
        async with self.db.sessions() as s:
            debtor = await s.get(Debtor, req.debtor_id)
        if debtor is None:
            return None
        row = features(req.amount_due, debtor.age, debtor.monthly_disposable_income, debtor.region, req.grade,
                       req.asset_flight_risk)
        return predict(self.model, [row])[0]

    def all(self) -> list:
        return [self.score_case]
