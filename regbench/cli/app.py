"""The ``regbench`` command: the Typer application and its commands, in the order ``--help`` lists them."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from regbench.cli import compare, export, run, study
from regbench.cli.console import err_console
from regbench.cli.fast_exit import exit_now

app = typer.Typer(
    help="Run and compare regularization studies (dropout, L1/L2, max-norm, noise, batch norm, early stopping) "
    "on MNIST.\n\nExample:\n\n    regbench run configs/dropout.yaml\n\n"
    "Shell completion: regbench --install-completion",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(run.run)
app.command()(study.validate)
app.command()(compare.compare)
app.command()(study.schema)
app.add_typer(export.export_app, name="export")


def _version(value: bool) -> None:
    if value:
        from regbench import __version__

        print(f"regbench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print regbench's version and exit."),
    ] = None,
) -> None:
    """Run and compare regularization studies on MNIST."""


def main() -> None:
    # Keep TensorFlow's C++ start-up chatter out of the user's terminal unless they asked for it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
    except SystemExit as done:  # how typer ends every command, with its exit code
        exit_now(done.code)
