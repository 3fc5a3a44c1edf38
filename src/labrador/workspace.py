"""Setting up a user's workspace: data directories and a taxonomy git repository.

`ilab config init` and the demo use this. Cloning the community taxonomy needs the network; without it we
create a local taxonomy from the bundled sample so everything else still works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from labrador import paths
from labrador.errors import LabradorError

_GIT_IDENTITY = ["-c", "user.name=labrador", "-c", "user.email=labrador@localhost", "-c", "commit.gpgsign=false"]


def sample_taxonomy_dir() -> Path:
    """The bundled sample taxonomy (package data: src/labrador/data/sample_taxonomy)."""
    return Path(str(resources.files("labrador") / "data" / "sample_taxonomy"))


def make_data_dirs() -> list[Path]:
    made = []
    for name in paths.DATA_SUBDIRS:
        directory = paths.data_subdir(name)
        directory.mkdir(parents=True, exist_ok=True)
        made.append(directory)
    return made


def _git(args: list[str], cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def create_sample_taxonomy(target: Path) -> None:
    """Copy the bundled sample into `target` and commit it on branch `main` of a new git repository."""
    source = sample_taxonomy_dir()
    if not source.is_dir():
        raise LabradorError(f"The bundled sample taxonomy is missing from the installation ({source}); reinstall labrador.")
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*_GIT_IDENTITY, "commit", "-q", "-m", "Sample taxonomy"]):
        result = _git(args, cwd=target)
        if result.returncode != 0:
            raise LabradorError(f"git {' '.join(args)} failed in {target}: {result.stderr.strip()}")


@dataclass
class TaxonomySetup:
    path: Path
    how: str  # "existing", "cloned" or "sample"
    message: str


def ensure_taxonomy(target: Path, repo_url: str, clone_timeout: float = 30) -> TaxonomySetup:
    """Make sure a taxonomy exists at `target`: keep an existing one, else clone `repo_url`, else the sample."""
    if target.is_dir() and any(target.iterdir()):
        return TaxonomySetup(target, "existing", f"Using the existing taxonomy at {target}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    reason = "no repository URL was given"
    if repo_url:
        if repo_url.startswith("-"):
            raise LabradorError(f"The taxonomy repository URL {repo_url!r} starts with '-'; give a real URL.")
        try:
            result = _git(["clone", "-q", "--depth", "1", "--", repo_url, str(target)], timeout=clone_timeout)
            if result.returncode == 0:
                return TaxonomySetup(target, "cloned", f"Cloned the taxonomy from {repo_url} into {target}.")
            reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "git clone failed"
        except subprocess.TimeoutExpired:
            reason = f"git clone did not finish in {clone_timeout:.0f} s"
        shutil.rmtree(target, ignore_errors=True)
    create_sample_taxonomy(target)
    return TaxonomySetup(
        target, "sample",
        f"Could not clone the taxonomy repository {repo_url or '(none)'} ({reason}); created a local taxonomy "
        f"from the bundled sample at {target} instead. Add your own qna.yaml files there.",
    )
