"""TODO."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Outcome = dict[str, Any]


EpochHook = Callable[[str, int, dict[str, float]], None]
