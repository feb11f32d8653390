"""The README's install and quickstart commands, run as a newcomer runs them: on a clean
clone, in fresh virtual environments, with pip reaching the package index for the
dependencies.

Slow (two environments are built: about 30-40 s here) and part of `make test`. Skipped, with
the reason, when this is not a git checkout or pip cannot reach an index.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDER = "/path/to/llmcache"
# The install line this test runs, as the README prints it.
INSTALL = f'pip install "{PLACEHOLDER}[redis]"'
_OFFLINE = re.compile(
    r"Failed to establish a new connection|Temporary failure in name "
    r"resolution|Network is unreachable|ConnectTimeout|ReadTimeoutError|"
    r"Could not fetch URL"
)


def _env() -> dict[str, str]:
    """This environment without the signs of the venv running the tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def _run(
    command: Sequence[str], *, cwd: Path, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(command),
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0 and _OFFLINE.search(done.stdout + done.stderr):
        pytest.skip(f"pip cannot reach a package index: {done.stderr.strip()[-300:]}")
    if check:
        assert done.returncode == 0, (
            f"{' '.join(command)} exited {done.returncode}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done


def _git(*args: str) -> list[str]:
    out = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [p for p in out.split("\0") if p]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``git clone`` of this checkout, with the working tree's uncommitted changes laid over
    it: what the next commit holds, so the README and Makefile being edited are the ones
    tested (on a committed tree this is the plain clone)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    dest = tmp_path_factory.mktemp("clean") / "llmcache"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(dest)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for rel in _git("ls-files", "-z", "--modified", "--others", "--exclude-standard"):
        source, target = ROOT / rel, dest / rel
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.exists():  # deleted in the working tree
            target.unlink()
    yield dest


def _packages(python: Path) -> set[str]:
    listed = _run([str(python), "-m", "pip", "list", "--format=freeze"], cwd=python.parent)
    return {line.split("==")[0].lower() for line in listed.stdout.splitlines()}


def test_the_readme_says_how_to_install_and_warns_about_pypi() -> None:
    assert INSTALL in README
    assert "`pip install llmcache` does not install this package" in README
    assert "make quickstart" in README and "make demo" in README and "make test" in README


def test_install_from_a_clone_as_the_readme_says(clone: Path, tmp_path: Path) -> None:
    venv = tmp_path / "project-venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    pip_args = INSTALL.replace(PLACEHOLDER, str(clone)).replace('"', "").split()[1:]
    _run([str(python), "-m", "pip", "-q", *pip_args], cwd=tmp_path)

    found = _run(
        [
            str(python),
            "-c",
            "import llmcache, redis; print(llmcache.__version__); print(llmcache.__file__)",
        ],
        cwd=tmp_path,
    ).stdout.split()
    assert found[0] == "0.1.0"  # this project's, not PyPI's 0.0.1 placeholder
    assert Path(found[1]).is_relative_to(venv)
    assert not {"pytest", "ai-todo", "llmcache-test-plugins"} & _packages(python)
    backends = _run([str(venv / "bin" / "llmcache"), "backends", "--check"], cwd=tmp_path)
    assert "ollama" in backends.stdout and "broken-test" not in backends.stdout

    # The one-screen example runs on that install alone.
    quick = _run([str(python), str(clone / "examples" / "quickstart.py")], cwd=tmp_path)
    assert "faster" in quick.stdout and "after a restart" in quick.stdout


def test_make_quickstart_on_a_clean_clone_installs_llmcache_alone(clone: Path) -> None:
    if shutil.which("make") is None or shutil.which("python3") is None:
        pytest.skip("needs make and python3 on PATH, as the README does")
    done = _run(["make", "quickstart"], cwd=clone)
    assert "faster" in done.stdout and "after a restart" in done.stdout
    python = clone / ".venv" / "bin" / "python"
    installed = _packages(python)
    assert "llmcache" in installed
    # Not the dev extra, not the example app, not the test-only plugins (one is broken).
    assert not {"pytest", "mypy", "ai-todo", "llmcache-test-plugins", "wordllama"} & installed
    check = _run([str(clone / ".venv" / "bin" / "llmcache"), "backends", "--check"], cwd=clone)
    assert "broken-test" not in check.stdout
