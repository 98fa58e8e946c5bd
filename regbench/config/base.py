"""What every part of the study schema shares: strict models (an unknown key is an error), the error-text form
of a value, the seed bound."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

MAX_SEED = 2**32 - 1  # Keras seeds its generators with 32-bit numbers


def show_value(value: Any) -> str:
    """A value as error text shows it: JSON where it can be."""
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)
