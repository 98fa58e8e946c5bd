"""Whether a variant's name can name its folder on every file system regbench's users share folders on."""

from __future__ import annotations

import re

from regbench.config.messages import Problems
from regbench.config.schema import show_value
from regbench.config.sweep import VARIANT_NAME

# Names Windows keeps for devices, with or without an extension: a folder "nul" or "con.x" cannot be made there.
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a variant's folder on every file system (None when it can), as 'expected ...'."""
    if not re.fullmatch(VARIANT_NAME, name):
        return f"a name of letters, digits, '_', '.', '+', '-', '=' or ',' (it names a folder), got {show_value(name)}"
    if name.split(".")[0].lower() in WINDOWS_RESERVED or name.endswith("."):
        reserved = "not CON, PRN, AUX, NUL, COM0-9, LPT0-9, nor ending in '.'"
        return f"a name Windows can give a folder ({reserved}), got {name}"
    return None  # a name too long for a folder is shortened with its hash (store.layout.variant_folder)


def case_collisions(names: list[str], problems: Problems) -> None:
    """Variant names that differ only in case name one folder on macOS and Windows (and in a shared folder)."""
    first: dict[str, str] = {}
    for name in names:
        other = first.setdefault(name.lower(), name)
        if other != name:
            problems.add(
                problems.lines.get(("variants", name), 1),
                f"variants.{name}: expected a name that differs from {other!r} by more than case (on macOS and "
                f"Windows both name one folder)",
            )
