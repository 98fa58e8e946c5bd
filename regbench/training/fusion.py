"""Which runs can share one fused model: each config field's fusion policy, as its component declares it."""

from __future__ import annotations

import json
from typing import Any

from regbench.config.schema import SECTIONS, VariantConfig
from regbench.training.components import ALONE, COMPONENTS, SHARED

FUSION = {path: how for c in COMPONENTS for path, how in c.fields.items()}


_DEFAULTS = VariantConfig().model_dump(mode="json")


def config_fields(cfg: VariantConfig) -> dict[str, tuple[Any, Any]]:
    """Every field of a config as dotted key -> (value, default): the fields of each section, and top-level
    fields that are not sections (reference) as themselves."""
    dumped = cfg.model_dump(mode="json")
    out = {}
    for name, value in dumped.items():
        if name in SECTIONS:
            out.update({f"{name}.{k}": (v, _DEFAULTS[name][k]) for k, v in value.items()})
        else:
            out[name] = (value, _DEFAULTS[name])
    return out


def why_alone(cfg: VariantConfig) -> str | None:
    """Why a run cannot be fused (a short phrase naming the field), or None when it can."""
    for path, (value, default) in config_fields(cfg).items():
        how = FUSION.get(path)
        if how is None:
            return f"{path} is not supported by fused training"
        if how == ALONE and value != default:
            return f"{path} is {json.dumps(value)}"
    return None


def fusion_key(cfg: VariantConfig) -> str | None:
    """Runs with equal keys can be fused: every SHARED field's value. None for a run that must train alone
    (see :func:`why_alone`)."""
    if why_alone(cfg) is not None:
        return None
    fields = config_fields(cfg)
    return json.dumps({p: fields[p][0] for p, how in FUSION.items() if how == SHARED}, sort_keys=True)
