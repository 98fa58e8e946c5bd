"""JAX's persistent compile cache, on by default for regbench."""

from __future__ import annotations

import os


def compile_cache(keras=None) -> str | None:
    """On JAX, keep compiled programs on disk so that a study compiles each shape once per machine, not once per
    process; return the folder, or None when off. ``REGBENCH_COMPILE_CACHE``: a folder, or ``off``; default
    ``$XDG_CACHE_HOME/regbench/jax`` (``~/.cache/regbench/jax``), at most 1 GiB (least recently used entries go).
    A ``JAX_COMPILATION_CACHE_DIR`` of your own wins. It saves the compiling of every run after the first of the
    same shapes (docs/performance.md). JAX keys each entry by the
    program, the compile options and the jax/jaxlib versions, so a result cannot come from a stale program.
    """
    if keras is None or keras.backend.backend() != "jax":
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:  # JAX_COMPILATION_CACHE_DIR, or set already in this process
        return jax.config.jax_compilation_cache_dir
    setting = os.environ.get("REGBENCH_COMPILE_CACHE", "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.abspath(setting or os.path.join(xdg, "regbench", "jax"))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:  # a read-only home: compile in every process, as without a cache
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the many small compiles add up too
    jax.config.update("jax_compilation_cache_max_size", 1 << 30)
    return folder
