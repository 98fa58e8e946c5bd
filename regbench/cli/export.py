"""``regbench export``: finished runs to other tools (MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer  # noqa: E402

from regbench.cli.console import fail, say
from regbench.errors import RegbenchError  # noqa: E402

export_app = typer.Typer(
    help="Export finished runs to other tools.\n\nExample:\n\n    regbench export mlflow outputs/* "
    "--tracking-uri sqlite:///mlflow.db",
    no_args_is_help=True,
)


@export_app.command("mlflow")
def export_mlflow(
    paths: Annotated[list[Path], typer.Argument(help="Experiment folders, run folders, or a folder above them.")],
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI, e.g. sqlite:///mlflow.db or a server URL; default: MLflow's own.",
            envvar="MLFLOW_TRACKING_URI",
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="MLflow experiment name; default: each run's study name.")
    ] = None,
) -> None:
    """One MLflow run per regbench run: config as params, results and per-epoch history as metrics, metrics.json,
    history.csv and figures as artifacts, tags for study, variant, seed and run id. Running it again adds only
    runs that are not there yet. Needs pip install 'regbench\\[mlflow]'.

    Example:

        regbench export mlflow outputs/* --tracking-uri sqlite:///mlflow.db && mlflow ui --backend-store-uri sqlite:///mlflow.db
    """
    from regbench.output.mlflow import export_mlflow as export

    try:
        result = export(paths, tracking_uri=tracking_uri, experiment=experiment)
    except RegbenchError as exc:
        raise fail(exc) from None
    for s in result.skipped:
        say(f"skipped {s.path}: {s.reason}", err=True, soft_wrap=True)
    say(
        f"Exported {len(result.added)} run(s) to MLflow experiment(s) {', '.join(sorted(result.experiments))}; "
        f"{len(result.existing)} were there already"
    )
