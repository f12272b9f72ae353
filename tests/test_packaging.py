"""The project's set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
