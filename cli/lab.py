"""``collections lab population|run|train``: the strategy lab (SPEC §9).

Bad input (an unknown pattern, ``--debtors`` below 1, ``--split`` outside
(0, 1), a malformed strategy or population file, a model file of the wrong
shape) is one line and exit 2, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli import render
from cli.errors import OK, UsageError
from cli.session import launch

app = typer.Typer(name="lab", no_args_is_help=True, help="The strategy lab: simulated debtor populations run "
                  "through the real workflows, reports, the recovery score.")
PANEL = "Strategy lab"


def _usage(e: Exception) -> UsageError:
    return UsageError(str(e))


@app.command("population")
def population(
    ctx: typer.Context,
    debtors: Annotated[int, typer.Option("--debtors", "-n", help="how many debtors")] = 300,
    seed: Annotated[int, typer.Option("--seed", "-s", help="the same seed gives the same file")] = 1,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="the JSON Lines file to write")] = None,
    patterns: Annotated[Optional[str], typer.Option(
        "--patterns", help="comma-separated pattern names (reach.pay.twist); default all")] = None,
    list_: Annotated[bool, typer.Option("--list", help="print the pattern names and exit")] = False,
) -> Any:
    """Write a population of simulated debtors as account.defaulted events with their simulation profiles."""
    from lab import population as pop

    async def work() -> int:
        if list_:
            for name in pop.pattern_names():
                render.say(name)
            return OK
        if out is None:
            raise UsageError("give --out FILE for the population")
        try:
            accounts = pop.write(out, debtors, seed, patterns)
        except pop.PopulationError as e:
            raise _usage(e) from None
        render.say(f"wrote {accounts} accounts of {debtors} debtors to {out} (seed {seed})")
        return OK
    return launch(ctx, work())


@app.command("run")
def run(
    ctx: typer.Context,
    debtors: Annotated[int, typer.Option("--debtors", "-n", help="how many debtors")] = 300,
    days: Annotated[int, typer.Option("--days", "-d", help="simulated days to run")] = 180,
    seed: Annotated[int, typer.Option("--seed", "-s")] = 1,
    out: Annotated[Path, typer.Option("--out", "-o", help="a new directory: lab.db, report.json, plots")] = Path("lab-run"),
    strategy: Annotated[Optional[Path], typer.Option("--strategy", help="the champion's strategy TOML")] = None,
    challenger: Annotated[Optional[Path], typer.Option("--challenger", help="the challenger's strategy TOML")] = None,
    split: Annotated[float, typer.Option("--split", help="share of debtors the challenger gets, in (0, 1)")] = 0.5,
    population_file: Annotated[Optional[Path], typer.Option(
        "--population", help="a population file (lab population) instead of generating one")] = None,
    patterns: Annotated[Optional[str], typer.Option("--patterns", help="comma-separated pattern names")] = None,
) -> Any:
    """Run a population through the real workflows on a time-skipping server; write report.json and plots."""
    from lab import population as pop
    from lab import run as lab_run

    req = lab_run.LabRequest(debtors=debtors, days=days, seed=seed, out=out, strategy=strategy,
                             challenger=challenger, split=split, population=population_file, patterns=patterns)

    async def work() -> int:
        try:
            lab_run.check(req)
            if population_file is not None:
                pop.read(population_file)
        except (lab_run.LabError, pop.PopulationError) as e:
            raise _usage(e) from None
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=render.stderr(), transient=True) as bar:
            tasks = {"ingest": bar.add_task("ingest", total=None), "day": bar.add_task("simulated days", total=days)}

            def note(phase: str, done: int, total: int) -> None:
                bar.update(tasks[phase], completed=done, total=total)
            report = await lab_run.run(req, note)
        _summary(report, out)
        return OK
    return launch(ctx, work())


def _summary(report: dict[str, Any], out: Path) -> None:
    run_ = report["run"]
    render.say(f"{run_['debtors']} debtors ({run_['accounts']} accounts) x {run_['days']} days in "
               f"{run_['wall_seconds']} s: {run_['debtor_days_per_second']} simulated debtor-days/s")
    for name, s in report["strategies"].items():
        render.say(f"{name} ({s['strategy']}): recovered {100 * s['recovery_rate_by_count']:.1f} % of accounts, "
                   f"{100 * s['recovery_rate_by_amount']:.1f} % of the amount ({s['amount_recovered']}); "
                   f"contacts per debtor {s['contacts_per_debtor']}; plans {100 * s['plan_uptake']:.0f} %")
    audit = report["audit"]
    render.say(f"compliance audit: {audit['violations']} violations in {audit['attempts']} contact attempts")
    render.say(f"report: {out / 'report.json'}; plots: {', '.join(str(out / n) for n in _plot_names())}")


def _plot_names() -> tuple[str, ...]:
    from lab.plots import FILES
    return FILES


@app.command("train")
def train(
    ctx: typer.Context,
    runs: Annotated[Optional[list[Path]], typer.Option(
        "--runs", help="a lab run directory (several: the last is held out); more may follow as arguments")] = None,
    more: Annotated[Optional[list[Path]], typer.Argument(metavar="[DIR]...", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="the model file to write (joblib)")] = Path("model.joblib"),
    as_json: Annotated[bool, typer.Option("--json", help="the result as JSON")] = False,
) -> Any:
    """Fit the recovery score on lab outcomes; print its AUC on a held-out lab population (simulated debtors)."""
    async def work() -> int:
        from lab import score

        try:
            trained = await score.train([*(runs or []), *(more or [])], out)
        except score.TrainError as e:
            raise _usage(e) from None
        render.say(score.summary_json(trained) if as_json else score.describe(trained))
        return OK
    return launch(ctx, work())
