"""The command line: one module per command (export: its subcommands). A command parses its options, calls
one library function and prints; TensorFlow, Keras and JAX are imported only inside the functions that train,
so ``--help``, ``validate``, ``compare`` and ``schema`` answer at once."""

import os

# regbench's own config and record models need no pydantic plugins, and looking them up scans every installed
# package's entry points at every command's start (docs/performance.md). Users can still set it.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# Every child process regbench starts (process-pool workers, a local Ray's workers, the figure helper, one run per
# backend) leaves the working directory off its import path (Python 3.11+): see regbench.execution.child.
os.environ.setdefault("PYTHONSAFEPATH", "1")

from regbench.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
