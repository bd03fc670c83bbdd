"""Questions only the repository can answer, asked with `git` on the repository storage.

GitLab asks Gitaly. This service asks `git` directly when a storage's `path` is configured; without
it every answer is None ("unknown") and the checks that need one are skipped, which the start-up
log and the README say. Gitaly's quarantine directories (from the `env` of /allowed) are honoured,
so objects of the push being checked are visible.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from service.config import Storage

log = logging.getLogger("gitlab_internal_api.repository")

# Only these variables of Gitaly's hook environment are used (Gitlab::Git::HookEnv's allow list).
QUARANTINE_VARIABLES = ("GIT_OBJECT_DIRECTORY_RELATIVE", "GIT_ALTERNATE_OBJECT_DIRECTORIES_RELATIVE")
CHECKS_NEEDING_REPOSITORY = (
    "force pushes to protected branches",
    "new protected branches based on a commit that is not on a protected branch",
)


@lru_cache(maxsize=65536)
def hashed_disk_path(project_id: int) -> str:
    digest = hashlib.sha256(str(project_id).encode()).hexdigest()
    return f"@hashed/{digest[:2]}/{digest[2:4]}/{digest}"


def gitaly_repository(
    storage_name: str,
    project_id: int,
    legacy_disk_path: str | None,
    gl_repository: str,
    gl_project_path: str,
    *,
    wiki: bool = False,
) -> dict[str, Any]:
    """Gitaly's Repository message as GitLab hands it out (/allowed's gitaly block, kas's agent_info)."""
    disk_path = legacy_disk_path or hashed_disk_path(project_id)
    return {
        "storage_name": storage_name,
        "relative_path": disk_path + (".wiki.git" if wiki else ".git"),
        "git_object_directory": "",
        "git_alternate_object_directories": [],
        "gl_repository": gl_repository,
        "gl_project_path": gl_project_path,
    }


@dataclass(frozen=True)
class Git:
    """The git binary, and the longest one repository read of the job may take (`jobs.git_timeout`,
    GitLab's gitaly_timeout_default). The jobs of a repository run one at a time, so a git that hangs
    (a stalled storage) must not hold the others back for ever: past it the job fails, and is
    retried like any other failure."""

    binary: str
    timeout: float


class RepositoryInspector:
    def __init__(self, storages: Mapping[str, Storage], git_timeout: float = 55.0) -> None:
        self.storages = storages
        self.git = shutil.which("git")
        # what the PostReceive job's reads run (push_jobs.run_git); None without git
        self.job_git = Git(self.git, git_timeout) if self.git is not None else None

    @property
    def unavailable_reason(self) -> str | None:
        if not any(storage.path for storage in self.storages.values()):
            return "no repository storage has a `path` configured"
        if self.git is None:
            return "`git` is not installed"
        return None

    def repository_dir(self, storage: str, relative_path: str) -> Path | None:
        configured = self.storages.get(storage)
        if configured is None or configured.path is None or self.git is None:
            return None
        return configured.path / relative_path

    def _environment(self, repo: Path, hook_env: Mapping[str, Any]) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_DIR": str(repo), "LC_ALL": "C"}
        objects = hook_env.get("GIT_OBJECT_DIRECTORY_RELATIVE")
        if isinstance(objects, str) and objects and ".." not in objects.split("/"):
            env["GIT_OBJECT_DIRECTORY"] = str(repo / objects)
        alternates = hook_env.get("GIT_ALTERNATE_OBJECT_DIRECTORIES_RELATIVE")
        if isinstance(alternates, list):
            dirs = [str(repo / a) for a in alternates if isinstance(a, str) and ".." not in a.split("/")]
            if dirs:
                env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = os.pathsep.join(dirs)
        return env

    async def _git(self, repo: Path, hook_env: Mapping[str, Any], *args: str) -> tuple[int, bytes]:
        assert self.git is not None
        process = await asyncio.create_subprocess_exec(
            self.git,
            *args,
            env=self._environment(repo, hook_env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            stdout, _ = await process.communicate()
        except asyncio.CancelledError:
            # The push deadline passed: do not leave git running behind the answer.
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        return process.returncode or 0, stdout

    async def exists(self, storage: str, relative_path: str) -> bool | None:
        repo = self.repository_dir(storage, relative_path)
        if repo is None:
            return None
        return await asyncio.to_thread((repo / "HEAD").exists)

    async def is_force_push(
        self, storage: str, relative_path: str, hook_env: Mapping[str, Any], oldrev: str, newrev: str
    ) -> bool | None:
        repo = self.repository_dir(storage, relative_path)
        if repo is None:
            return None
        code, _ = await self._git(repo, hook_env, "merge-base", "--is-ancestor", oldrev, newrev)
        if code in (0, 1):
            return code == 1
        log.warning("git merge-base failed (%s) in %s", code, repo)
        return None

    async def commit_on_branches(
        self, storage: str, relative_path: str, hook_env: Mapping[str, Any], sha: str, patterns: list[str]
    ) -> bool | None:
        repo = self.repository_dir(storage, relative_path)
        if repo is None:
            return None
        refs = [f"refs/heads/{pattern}" for pattern in patterns]
        code, out = await self._git(repo, hook_env, "for-each-ref", "--count=1", "--contains", sha, *refs)
        if code != 0:
            return None
        return bool(out.strip())
