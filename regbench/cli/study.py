"""``regbench validate`` and ``regbench schema``: the study format, without training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer  # noqa: E402

from regbench.cli.console import fail, say


def validate(
    configs: Annotated[list[Path], typer.Argument(help="One or more study YAML files.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: dotted.key=value.")] = None,
) -> None:
    """Check study files without training: every problem in every file is reported.

    Exit code 0 when all are valid, 2 otherwise.

    Example:

        regbench validate configs/*.yaml
    """
    from regbench.config.loading import load
    from regbench.errors import ConfigError

    failed = False
    for path in configs:
        try:
            experiment = load(path, overrides=set_ or [])
        except ConfigError as exc:
            failed = True
            fail(exc)
            continue
        runs = sum(len(v.train.seeds) for v in experiment.variants.values())
        what = f"{len(experiment.variants)} variant(s), {runs} run(s)"
        if experiment.search is not None:
            seeds = len(experiment.defaults.get("train", {}).get("seeds", []))
            searched = f"a search of {experiment.search.trials} trials x {seeds} seed(s)"
            what = searched + (f", and {what}" if runs else "")
        say(f"{path}: ok ({experiment.name}: {what})")
    if failed:
        raise typer.Exit(2)


def schema() -> None:
    """Print the JSON Schema of the study file format (for editor completion and checks).

    Example:

        regbench schema > regbench.schema.json
    """
    from regbench.config.loading import json_schema

    print(json.dumps(json_schema(), indent=2))
