"""Options that more than one command takes, declared once, and the closed vocabularies of the command line as
enums (Typer checks a value against them and lists the choices)."""

from __future__ import annotations

import enum

import typer


class OutputFormat(str, enum.Enum):
    """--format of compare."""

    TABLE = "table"
    MD = "md"
    CSV = "csv"
    JSON = "json"


PAIRING = typer.Option(
    "--paired/--welch",
    help="Test each variant against the baseline by a paired t-test over the seeds both share (runs of one seed "
    "share their initial weights and batch order), or by Welch's. run: sets analysis.test (default welch); "
    "compare: default the studies' analysis.test, else Welch's.",
)

MARGIN = typer.Option(
    "--margin",
    help="Equivalence margin in the tested metric's column unit (pp for test accuracy): a Δ within ±margin is "
    "'equivalent'. run: sets analysis.margin; compare: default the studies' analysis.margin; else 0.2 pp for "
    "test accuracy.",
)


def test_kind(pairing: bool | None):
    """--paired/--welch as an analysis.test value, None when neither was given."""
    from regbench.config.choices import TestKind

    return None if pairing is None else (TestKind.PAIRED if pairing else TestKind.WELCH)
