"""Run identity: which runs are the same experiment. Light (no pydantic, no framework), so that reporting can
use it on run folders alone.

- ``comparable_config``: a resolved config without the keys that do not change a run's result (the seed list,
  steps_per_execution) or are not training settings (a variant's reference result);
- ``config_hash``: runs of one variant with equal hashes are pooled over seeds (analysis.summary.summarize adds the
  runtime: backend, versions, batch order);
- ``run_id``: a (config, seed) run; ``--resume`` skips a folder holding the same id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

IGNORED_CONFIG_KEYS = {("train", "seeds"), ("train", "steps_per_execution")}


IGNORED_PREFIXES = ("reference",)


def _flatten(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in tree.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config (as JSON) flattened to dotted keys, without keys that do not change results."""
    return {
        ".".join(k): v
        for k, v in _flatten(config).items()
        if k not in IGNORED_CONFIG_KEYS and k[0] not in IGNORED_PREFIXES
    }


def config_hash(config: dict[str, Any]) -> str:
    text = json.dumps(comparable_config(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_id(config: dict[str, Any], seed: int) -> str:
    """A run's identity: a hash of its comparable config and its seed."""
    text = json.dumps({"config": comparable_config(config), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
