from __future__ import annotations

import os
from pathlib import Path

import typer  # noqa: E402
from rich.console import Console
from rich.table import Table
from rich.text import Text  # noqa: E402

from regbench.errors import RegbenchError  # noqa: E402

console = Console()


if not console.is_terminal and "COLUMNS" not in os.environ:
    console = Console(width=200)  # logs and pipes: keep each table row on one line


err_console = Console(stderr=True, width=None if console.is_terminal else 200)


def writable_folder(option: str, path: Path) -> None:
    """Bad input, exit 2: ``path`` is a file, or a folder this user cannot create or write in."""
    if path.exists() and not path.is_dir():
        raise RegbenchError(f"{option} {path}: is a file; expected a folder (it is created if missing)", exit_code=2)
    broken = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
    if broken is not None:
        raise RegbenchError(
            f"{option} {path}: {broken} is a symbolic link to {os.readlink(broken)}, which does not exist; "
            "create its target or choose another folder",
            exit_code=2,
        )
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RegbenchError(f"{option} {path}: cannot write in {parent} (permission denied)", exit_code=2)


def fail(exc: RegbenchError) -> typer.Exit:
    for line in exc.problems:
        err_console.print(shown(f"Error: {line}"), highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def printable(text: object) -> str:
    """``text`` with control characters (escape sequences, carriage returns, bells) as visible escapes: a name
    from someone's folder must not clear the screen, move the cursor or plant a terminal link."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def shown(text: str) -> Text:
    """Text from a file (a variant name, a path) as the terminal should show it: never as rich markup (a name
    like ``[link=...]x[/link]`` would hide a link), control characters as escapes."""
    return Text(printable(text))


def say(*parts: str | tuple[str, str], err: bool = False, **kwargs) -> None:
    """Print a line whose parts are shown as written (:func:`shown`); a part ``(text, style)`` in that style."""
    line = Text()
    for part in parts:
        text, style = part if isinstance(part, tuple) else (part, "")
        line.append(printable(text), style=style)
    (err_console if err else console).print(line, highlight=False, **kwargs)


def rich_table(
    header: list[str], rows: list[list[str]], title: str | None = None, left: tuple[str, ...] = ("variant",)
) -> Table:
    t = Table(title=shown(title) if title else None, header_style="bold")
    for h in header:
        t.add_column(shown(h), justify="left" if h in left else "right", no_wrap=True)
    for row in rows:
        t.add_row(*(shown(c) for c in row))
    return t
