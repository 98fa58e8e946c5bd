"""Starting Keras quietly and fast (regbench/backend/quiet_import.py) and JAX's compile cache
(regbench/backend/compile_cache.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.subprocess

CACHE_SCRIPT = """
from regbench.backend.compile_cache import compile_cache
from regbench.backend.quiet_import import import_keras
keras = import_keras()
import jax
jax.block_until_ready(jax.jit(lambda x: x * 2 + 1)(jax.numpy.ones(3)))
print(compile_cache(keras))
"""


def _jax_process(env: dict[str, str | None]) -> str:
    from conftest import run_in_backend

    unset = {"JAX_COMPILATION_CACHE_DIR": None, "REGBENCH_COMPILE_CACHE": None}
    return run_in_backend(CACHE_SCRIPT, "jax", **{**unset, **env})


def test_jax_programs_are_kept_on_disk_once_and_the_cache_can_be_turned_off(tmp_path):
    import pytest

    pytest.importorskip("jax")
    folder = tmp_path / "cache"
    assert _jax_process({"REGBENCH_COMPILE_CACHE": str(folder)}) == str(folder)
    entries = sorted(p.name for p in folder.iterdir())
    assert entries, "the compiled program was not written to the cache"
    assert _jax_process({"REGBENCH_COMPILE_CACHE": str(folder)}) == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == entries  # the same program again: read, not compiled anew
    off = tmp_path / "off"
    assert _jax_process({"REGBENCH_COMPILE_CACHE": "off", "XDG_CACHE_HOME": str(off)}) == "None"
    assert not (off / "regbench").exists()
    own = tmp_path / "own"
    assert _jax_process({"JAX_COMPILATION_CACHE_DIR": str(own)}) == str(own)  # the user's own setting wins


def test_keras_starts_without_scikit_learn_and_pandas_which_still_import_afterwards():
    """import_keras keeps Keras from importing scikit-learn and pandas (for features regbench does not use; about
    1.3 s of every start); where installed, they import as usual afterwards."""
    from conftest import run_in_backend

    script = (
        "import importlib.util, sys\n"
        "from regbench.backend.quiet_import import import_keras\n"
        "keras = import_keras()\n"
        "names = ('sklearn', 'pandas')\n"
        "assert not [n for n in names if n in sys.modules], 'Keras imported them'\n"
        "for name in names:\n"
        "    if importlib.util.find_spec(name):\n"
        "        importlib.import_module(name)\n"
        "print('ok', keras.ops.convert_to_numpy(keras.ops.ones(2)).sum())\n"
    )
    assert run_in_backend(script, "jax") == "ok 2.0"
