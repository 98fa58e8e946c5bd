"""Sweeps: a ``sweep:`` grid of dotted keys expanded into named variants."""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

from regbench.config.messages import known_key, unknown_dotted_key
from regbench.errors import ConfigError

VARIANT_NAME = r"[A-Za-z0-9][A-Za-z0-9_.+=,-]*"


def sweep_grid(sweep: Any) -> tuple[dict[str, list[Any]], list[tuple[str, str]]]:
    """Check a sweep section: known dotted keys mapped to non-empty lists. Returns (axes, problems)."""
    if not isinstance(sweep, dict):
        return {}, []  # absent, or a wrong type that StudyFile validation reports
    axes, problems = {}, []
    for key, values in sweep.items():
        key = str(key)
        if not known_key(key.split(".")):
            problems.append((key, unknown_dotted_key(key)))
        elif not isinstance(values, list):
            continue  # StudyFile's validation reports it
        elif not values:
            problems.append((key, "expected a non-empty list of values, got []"))
        else:
            axes[key] = values
    return axes, problems


def _value_label(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(_value_label(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(value))


def expand_sweep(
    variants: dict[str, Any], sweep: dict[str, list[Any]]
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Hand-written variants x the sweep grid. Grid variants are named from their values: ``l2=0.0001``
    (``dropout,l2=0.0001`` when crossed with a hand-written variant ``dropout``). Leaf names are used unless
    two swept keys share one. Returns the variant specs and, per grid variant, the keys the grid set.
    """
    if not sweep:
        return (variants or {"default": {}}), {}
    leaves = [k.split(".")[-1] for k in sweep]
    labels = [leaf if leaves.count(leaf) == 1 else key for leaf, key in zip(leaves, sweep, strict=True)]
    bases = variants or {"": {}}
    out: dict[str, Any] = {}
    swept: dict[str, tuple[str, ...]] = {}
    for base_name, spec in bases.items():
        for values in itertools.product(*sweep.values()):
            name = ",".join(f"{lbl}={_value_label(v)}" for lbl, v in zip(labels, values, strict=True))
            name = f"{base_name},{name}" if base_name else name
            tree = copy.deepcopy(spec) if isinstance(spec, dict) else {}
            for key, value in zip(sweep, values, strict=True):
                set_path(tree, key.split("."), value)
            if name in out:
                raise ConfigError(
                    [
                        f"sweep: two combinations of values are both named {name!r}; give the values distinct "
                        "spellings (a name keeps letters, digits and _ . + -, everything else becomes _)"
                    ]
                )
            out[name] = tree
            swept[name] = tuple(sweep)
    return out, swept


def set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        if not isinstance(tree.get(part), dict):
            tree[part] = {}
        tree = tree[part]
    tree[path[-1]] = value
