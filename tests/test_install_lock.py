"""`make install` installs exactly the versions of requirements.lock, the ones the tests passed with: a new
machine never trains on versions no test has seen (the JAX loop relies on Keras internals)."""

from __future__ import annotations

import re
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
MADE_BY_MAKE = (Path(sys.prefix) / ".installed-stamp").is_file()  # the Makefile's stamp in its venv


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not an exact pin name==version"
            pins[_name(name)] = version.strip()
    return pins


def test_the_lock_pins_every_dependency_the_package_names():
    names = {_name(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in metadata.requires("regbench") or []}
    assert names <= set(locked()), f"not pinned in requirements.lock: {sorted(names - set(locked()))}"


@pytest.mark.skipif(not MADE_BY_MAKE, reason="this environment was not made by `make install`")
def test_make_install_installed_exactly_the_locked_versions():
    # what pip installed into the venv; not what an imported package puts on sys.path (Ray's thirdparty_files)
    site = list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    installed = {_name(d.metadata["Name"]): d.version for d in metadata.distributions(path=site)}
    pins = locked()
    wrong = {n: f"locked {v}, installed {installed.get(n)}" for n, v in pins.items() if installed.get(n) != v}
    unlocked = sorted(set(installed) - set(pins) - {"regbench", "pip", "setuptools", "wheel"})
    assert not wrong, f"pip freeze differs from requirements.lock: {wrong}"
    assert not unlocked, f"installed but not in requirements.lock (run `make lock` on purpose): {unlocked}"
