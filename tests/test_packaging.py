"""The project's set-up files agree with each other, and a built wheel works."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import wslab

ROOT = Path(__file__).resolve().parent.parent


def _split(requirement: str) -> tuple[str, str]:
    """Split ``name>=1,<2`` into a normalized name and its version specifier."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert match, f"unreadable requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(2).replace(" ", "")


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


class TestEnvironmentYml:
    """environment.yml (conda, Binder) lists what pyproject.toml lists."""

    def _conda_requirements(self) -> dict[str, str]:
        env = yaml.safe_load((ROOT / "environment.yml").read_text())
        found: dict[str, str] = {}
        for dep in env["dependencies"]:
            items = dep["pip"] if isinstance(dep, dict) else [dep]
            for item in items:
                name, spec = _split(item)
                found[name] = spec
        return found

    def test_same_dependencies_and_versions(self) -> None:
        project = _pyproject()["project"]
        assert isinstance(project, dict)
        wanted = dict(_split(r) for r in project["dependencies"])
        conda = self._conda_requirements()
        python = conda.pop("python")
        conda.pop("pip")
        assert conda == wanted, "environment.yml and pyproject.toml list different dependencies"
        assert python == project["requires-python"]

    def test_binder_installs_the_package(self) -> None:
        # repo2docker installs environment.yml only; postBuild installs wslab itself.
        post_build = (ROOT / "postBuild").read_text()
        assert "pip install --no-deps -e ." in post_build


class TestVersion:
    """One version number, in pyproject.toml and in the package."""

    def test_versions_agree(self) -> None:
        project = _pyproject()["project"]
        assert isinstance(project, dict)
        assert wslab.__version__ == project["version"]


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    """Run a command; fail the test with its output if it fails."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``python -m build`` makes of this checkout (built once, with uv: ~2 s)."""
    if shutil.which("uv", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("needs uv in this environment (the test extra installs it)")
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--wheel", "--installer", "uv", "--outdir", out, ROOT)
    (found,) = out.glob("wslab-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its dependencies (uv, from its cache)."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    uv = Path(sys.executable).parent / "uv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    _run(uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel)
    return venv


@pytest.fixture
def served(venv: Path, tmp_path: Path) -> Iterator[str]:
    """``wslab serve --port 0`` from the venv; yields its page URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(
        [venv / "bin" / "wslab", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"chat page: (http://\S+?)\)", line)
        assert match, f"unexpected first line from wslab serve: {line!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


class TestWheel:
    """The wheel holds every subpackage and the chat page, and runs on its own."""

    def test_every_package_and_data_file(self, wheel: Path) -> None:
        names = set(zipfile.ZipFile(wheel).namelist())
        packages = [p.parent for p in (ROOT / "wslab").rglob("__init__.py")]
        assert len(packages) > 1, "expected subpackages (wslab.raw, wslab.conformance, ...)"
        for package in packages:
            for module in package.glob("*.py"):
                assert module.relative_to(ROOT).as_posix() in names
        for data in ["wslab/static/chat.html", "wslab/py.typed"]:
            assert data in names
        assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]

    def test_installs_from_the_wheel(self, venv: Path, tmp_path: Path) -> None:
        # Run from an empty folder, so that this checkout is not on sys.path.
        where = _run(
            venv / "bin" / "python", "-c", "import wslab; print(wslab.__file__)", cwd=tmp_path
        )
        assert Path(where.strip()).is_relative_to(venv)

    def test_wslab_serve_serves_the_chat_page(self, served: str) -> None:
        with urllib.request.urlopen(served, timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200
        assert "<html" in page.lower() and "WebSocket" in page


class TestMakefile:
    """``make lab`` gives students a lab of their own, free of instructor tools."""

    def _dry_run(self, target: str) -> str:
        if shutil.which("make") is None:
            pytest.skip("needs make")
        # -B: as on a fresh clone (every step shown); -n: nothing runs.
        return _run("make", "-n", "-B", target, "ARGS=--port=9999", cwd=ROOT)

    def test_lab_runs_from_its_own_venv_on_the_working_copy(self) -> None:
        commands = self._dry_run("lab")
        assert "-m venv --without-pip .venv-lab" in commands
        assert "'.[test]'" not in commands  # no test extras, so no nbgrader
        assert "-m wslab.lessons notebooks my-work" in commands  # working_copy
        assert "--ServerApp.root_dir=my-work" in commands and "--port=9999" in commands

    def test_tests_run_from_the_other_venv(self) -> None:
        assert "-e '.[test]'" in self._dry_run("test-unit")

    def test_bench_installs_its_extra(self) -> None:
        """Both extras in one requirement (a comma in $(call ...) once split it in two)."""
        assert "pip install -e '.[test,bench]'" in self._dry_run("bench")

    def test_instructor_tools_only_in_extras(self) -> None:
        project = _pyproject()["project"]
        assert isinstance(project, dict)
        names = {_split(r)[0] for r in project["dependencies"]}
        assert "nbgrader" not in names
        assert any("nbgrader" in r for r in project["optional-dependencies"]["grade"])
