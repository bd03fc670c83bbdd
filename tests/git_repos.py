"""Real git repositories for the PostReceive worker's tests: a project's bare repository where its
hashed path says, and a work tree to make commits in and push from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from service.domain.repository import hashed_disk_path


def git(*args: str, cwd: Path, **env: str) -> str:
    """git as Ada (author and committer), with `env` on top (GIT_COMMITTER_DATE, say)."""
    base = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env={**base, **env}, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def repositories(storage: Path, project_id: int) -> tuple[Path, Path]:
    """The project's bare repository (where its hashed path says) and a work tree on `main`."""
    bare = storage / (hashed_disk_path(project_id) + ".git")
    bare.parent.mkdir(parents=True)
    git("init", "--bare", "-q", str(bare), cwd=storage)
    work = storage / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    return bare, work
