"""PNG plots of a lab run's report (matplotlib, Agg: no display needed).

- ``recovery.png``: share of the amount due recovered by each day, per strategy;
- ``funnel.png``: how many accounts reached each stage, per strategy;
- ``strategies.png``: champion beside challenger (recovery by count and by
  amount, plan uptake and break rate), or the one strategy's figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

FILES = ("recovery.png", "funnel.png", "strategies.png")


def _recovery(out: Path, strategies: dict[str, Any]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, figures in strategies.items():
        ax.plot(range(len(figures["recovery_by_day"])), [100 * v for v in figures["recovery_by_day"]], label=name)
    ax.set_xlabel("day of the run")
    ax.set_ylabel("amount recovered (% of amount due)")
    ax.set_title("Recovery over days (simulated debtors)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "recovery.png", dpi=100)
    plt.close(fig)


def _funnel(out: Path, strategies: dict[str, Any]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(strategies)
    for k, (name, figures) in enumerate(strategies.items()):
        stages = list(figures["stage_funnel"])
        ax.barh([i + k * width for i in range(len(stages))], list(figures["stage_funnel"].values()), height=width,
                label=name)
    ax.set_yticks([i + width * (len(strategies) - 1) / 2 for i in range(len(stages))], stages)
    ax.invert_yaxis()
    ax.set_xlabel("accounts that reached the stage")
    ax.set_title("Stage funnel")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "funnel.png", dpi=100)
    plt.close(fig)


def _side_by_side(out: Path, strategies: dict[str, Any]) -> None:
    measures = {"recovered (count)": "recovery_rate_by_count", "recovered (amount)": "recovery_rate_by_amount",
                "plan uptake": "plan_uptake", "plan break rate": "plan_break_rate"}
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(strategies)
    for k, (name, figures) in enumerate(strategies.items()):
        ax.bar([i + k * width for i in range(len(measures))], [100 * figures[key] for key in measures.values()],
               width=width, label=f"{name} ({figures['strategy']})")
    ax.set_xticks([i + width * (len(strategies) - 1) / 2 for i in range(len(measures))], list(measures))
    ax.set_ylabel("%")
    ax.set_title("Champion beside challenger" if len(strategies) > 1 else "Strategy figures")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "strategies.png", dpi=100)
    plt.close(fig)


def draw(out: Path, report: dict[str, Any]) -> list[Path]:
    strategies = report["strategies"]
    _recovery(out, strategies)
    _funnel(out, strategies)
    _side_by_side(out, strategies)
    return [out / name for name in FILES]
