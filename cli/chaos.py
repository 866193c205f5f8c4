"""``raftsman chaos run FILE`` and ``raftsman chaos soak --minutes N``.

Both act on a cluster started by ``raftsman up`` (``--dir``/``--name`` as for ``up``),
print one progress line per event as the experiment runs, then the report, and write
the report as JSON and text under ``DIR/chaos/`` (or ``--report PATH`` for the JSON).
Exit status: 0 when every fault was recovered from and every invariant held, 1 when
not, 2 for a malformed experiment or a missing cluster.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.launcher.layout import DEFAULT_NAME, cluster_dir

if TYPE_CHECKING:
    from chaos.cluster import Cluster
    from chaos.experiment import Experiment
    from chaos.report import ExperimentReport

_dir_option = click.option(
    "--dir",
    "dir_",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cluster directory [default: ~/.raftsman/NAME].",
)
_name_option = click.option("--name", default=None, help=f"Cluster name [default: {DEFAULT_NAME}].")
_report_option = click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON report here [default: DIR/chaos/NAME-TIME.json].",
)


@click.group("chaos")
def chaos() -> None:
    """Inject faults into a local cluster and check that it heals (see docs/chaos.md)."""


def _cluster_dir(dir_: Path | None, name: str | None) -> Path:
    return cluster_dir(dir_, name)[0]


def _run(directory: Path, build: Callable[[Cluster], Experiment], report_path: Path | None) -> None:
    """Load the cluster, build the experiment with ``build(cluster)``, run it, report."""
    from chaos.cluster import ChaosError, Cluster
    from chaos.experiment import run_experiment
    from cli.launcher.state import StateFileError
    from proto import rpc

    try:
        cluster = Cluster(directory)
        experiment = build(cluster)
    except (ChaosError, StateFileError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

    def progress(line: str) -> None:
        click.echo(line)

    async def main() -> ExperimentReport:
        return await run_experiment(cluster, experiment, progress=progress)

    report: ExperimentReport = rpc.run(main)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = cluster.dir / "chaos"
    json_path = report_path or out_dir / f"{experiment.name}-{stamp}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(report.dumps())
    json_path.with_suffix(".txt").write_text(report.to_text() + "\n")
    click.echo("")
    click.echo(report.to_text())
    click.echo(f"\nreport: {json_path} (and {json_path.with_suffix('.txt').name})")
    sys.exit(0 if report.ok else 1)


@chaos.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_dir_option
@_name_option
@_report_option
def run(file: Path, dir_: Path | None, name: str | None, report_path: Path | None) -> None:
    """Run the experiment in FILE (YAML) against a running cluster."""
    from chaos.experiment import load_experiment

    _run(_cluster_dir(dir_, name), lambda cluster: load_experiment(file), report_path)


@chaos.command("soak")
@click.option("--minutes", type=click.FloatRange(min=0.1), required=True, help="How long.")
@click.option("--seed", type=int, default=None, help="Random seed [default: from the clock].")
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="Seconds of steady state between faults.",
)
@_dir_option
@_name_option
@_report_option
def soak(
    minutes: float,
    seed: int | None,
    interval: float,
    dir_: Path | None,
    name: str | None,
    report_path: Path | None,
) -> None:
    """Inject a random mix of faults for N minutes while a workload runs; check every
    invariant at the end."""
    from chaos.experiment import soak_experiment

    chosen = seed if seed is not None else int(dt.datetime.now().timestamp()) % 100_000
    click.echo(f"soak for {minutes:g} minutes, seed {chosen} (replay with --seed {chosen})")
    _run(
        _cluster_dir(dir_, name),
        lambda cluster: soak_experiment(cluster, minutes=minutes, seed=chosen, interval=interval),
        report_path,
    )
