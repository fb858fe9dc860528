"""Where nx's compiled numba kernels are cached (``nx.engine._numba``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from nx.engine import _numba
from nx.engine._numba import CACHE_ENV, choose_cache_dir, user_cache_dir


def _writable_except(*unwritable: Path):
    return lambda path: path not in unwritable


def test_user_cache_dir_follows_xdg(tmp_path):
    assert user_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}, "linux") == tmp_path / "nx" / "numba"
    # XDG: a relative XDG_CACHE_HOME is ignored
    default = Path.home() / ".cache" / "nx" / "numba"
    assert user_cache_dir({"XDG_CACHE_HOME": "rel/dir"}, "linux") == default
    assert user_cache_dir({}, "linux") == default
    windows = user_cache_dir({"LOCALAPPDATA": str(tmp_path)}, "win32")
    assert windows == tmp_path / "nx" / "Cache" / "numba"


def test_numba_cache_dir_set_by_the_user_wins(tmp_path):
    env = {CACHE_ENV: str(tmp_path / "mine"), "XDG_CACHE_HOME": str(tmp_path)}
    assert choose_cache_dir(env, tmp_path / "pkg", _writable_except()) == tmp_path / "mine"


def test_read_only_package_caches_in_the_user_cache_dir(tmp_path):
    package = tmp_path / "site-packages" / "nx" / "engine"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    chosen = choose_cache_dir(env, package, _writable_except(package))
    assert chosen == tmp_path / "cache" / "nx" / "numba"


def test_unwritable_user_cache_dir_falls_back(tmp_path):
    package = tmp_path / "pkg"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "USER": "alice"}
    user_dir = tmp_path / "cache" / "nx" / "numba"
    # the package's own __pycache__ (numba's default) when the package is writable
    assert choose_cache_dir(env, package, _writable_except(user_dir)) is None
    # else a per-user folder in the temp dir
    chosen = choose_cache_dir(env, package, _writable_except(user_dir, package))
    assert chosen is not None and chosen.name == "nx-numba-alice"


def test_writable_dir_creates_the_folder(tmp_path):
    target = tmp_path / "a" / "b"
    assert _numba.writable_dir(target) and target.is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert not _numba.writable_dir(blocker / "sub")


def test_kernels_are_cached_in_the_user_cache_dir_not_the_source_tree(tmp_path):
    """A real process: nx's numba settings, then a cached jitted function in a module
    of its own; its cache files land under $XDG_CACHE_HOME/nx/numba only."""
    module_dir = tmp_path / "src"
    module_dir.mkdir()
    (module_dir / "tiny_kernel.py").write_text(
        textwrap.dedent(
            """
            from nx.engine._numba import njit

            @njit(cache=True)
            def twice(x):
                return 2 * x
            """
        )
    )
    script = "import os, tiny_kernel; print(tiny_kernel.twice(21), os.environ['NUMBA_CACHE_DIR'])"
    env = {k: v for k, v in os.environ.items() if k != CACHE_ENV}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(module_dir))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    value, cache_dir = done.stdout.split()
    assert value == "42"
    assert Path(cache_dir) == tmp_path / "cache" / "nx" / "numba"
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.nb*"))
    assert any(name.startswith("tiny_kernel.twice") for name in cached), cached
    assert not list(module_dir.rglob("*.nb*"))


def test_numba_reads_the_same_dir():
    """numba's own setting is what nx chose (or numba's default when nx chose none)."""
    import numba

    assert numba.config.CACHE_DIR == os.environ.get(CACHE_ENV, "")
    if _numba.CACHE_DIR is not None:
        assert os.environ[CACHE_ENV] == str(_numba.CACHE_DIR)


def test_every_jitting_module_imports_numba_through_nx():
    """numba reads its cache dir when a jitted function is defined: any module of nx
    that imported numba itself could define kernels before the dir is set."""
    root = Path(_numba.__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(root))
        for folder in ("engine", "cli")
        for path in (root / folder).rglob("*.py")
        if path.name != "_numba.py"
        and any(
            line.strip().startswith(("import numba", "from numba"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert not offenders, f"import njit from nx.engine._numba instead: {offenders}"
