"""Run git safely: argument lists (no shell), no prompts, C locale, errors turned into TaxonomyError."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from labrador.errors import TaxonomyError

# Transports allowed for document repositories; everything else (ext::, fd::, http://, ...) is refused.
ALLOWED_PROTOCOLS = ("https", "ssh", "git", "file")
HARDENING = [
    "-c", "protocol.allow=never",
    *[arg for p in ALLOWED_PROTOCOLS for arg in ("-c", f"protocol.{p}.allow=always")],
    "-c", "core.symlinks=false",  # a symlink in a fetched repo becomes a small text file, never a link
    "-c", "core.hooksPath=/dev/null",
    "-c", "submodule.recurse=false",
    "-c", "core.sshCommand=ssh -o BatchMode=yes",
    "-c", "advice.detachedHead=false",
]


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANG": "C", "GIT_ALLOW_PROTOCOL": ":".join(ALLOWED_PROTOCOLS)})
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def run_git(args: list[str], cwd: Path, *, timeout: float = 120, hardened: bool = False,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """``git -C cwd <args>``; TaxonomyError with git's own last message when it fails and ``check``."""
    cmd = ["git", *(HARDENING if hardened else []), "-C", str(cwd), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=git_env(),
                              stdin=subprocess.DEVNULL, errors="replace")
    except FileNotFoundError:
        raise TaxonomyError("git is not installed (or not on PATH); install git, which the taxonomy needs.") from None
    except subprocess.TimeoutExpired:
        raise TaxonomyError(f"git {args[0]} in {cwd} did not finish within {timeout:.0f} s; check your network "
                            "connection and try again.") from None
    if check and proc.returncode != 0:
        raise TaxonomyError(f"git {args[0]} failed in {cwd}: {last_line(proc.stderr)}")
    return proc


def last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines or ["(no message)"])[-1]
