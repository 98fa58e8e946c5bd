"""The one exception type the CLI turns into ``Error: ...`` lines and an exit code."""

from __future__ import annotations


class RegbenchError(Exception):
    """A problem the user can fix. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, problems: str | list[str], exit_code: int | None = None):
        if exit_code is not None:
            self.exit_code = exit_code
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(RegbenchError):
    """A config file or override is malformed. Exit code 2, nothing written."""

    exit_code = 2


class DataError(RegbenchError):
    """A dataset could not be found or read."""

    exit_code = 2
