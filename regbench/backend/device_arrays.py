"""One device copy of each training array per process, shared by every run that trains on it."""

from __future__ import annotations

_COPIES: dict[tuple[object, int], tuple[object, object]] = {}  # (convert, id(array)) -> (array, its copy)


def shared_copy(array, convert):
    """One ``convert(array)`` per process (a TensorFlow tensor, a JAX device array), shared by every run that
    trains on ``array``: each run's traced pipeline or step keeps what it captured alive, and a copy per run
    would hold the data once per run."""
    key = (convert, id(array))
    held = _COPIES.get(key)
    if held is None or held[0] is not array:
        held = _COPIES[key] = (array, convert(array))
    return held[1]
