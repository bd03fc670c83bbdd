"""URLs of the instance as users see them, and the push notices that contain them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit


@dataclass(frozen=True)
class InstanceUrls:
    base: str  # external URL, no trailing slash
    ssh_user: str
    ssh_host: str
    ssh_port: int

    @cached_property  # asked on every /authorized_keys answer
    def host(self) -> str:
        return urlsplit(self.base).hostname or self.base

    def http_url_to_repo(self, full_path: str) -> str:
        return f"{self.base}/{full_path}.git"

    def ssh_url_to_repo(self, full_path: str) -> str:
        if self.ssh_port != 22:
            return f"ssh://{self.ssh_user}@{self.ssh_host}:{self.ssh_port}/{full_path}.git"
        return f"{self.ssh_user}@{self.ssh_host}:{full_path}.git"

    def url_to_repo(self, full_path: str, protocol: str | None) -> str:
        return self.ssh_url_to_repo(full_path) if protocol == "ssh" else self.http_url_to_repo(full_path)

    def project_url(self, full_path: str) -> str:
        return f"{self.base}/{full_path}"

    def project_moved_message(self, old_path: str, new_path: str, protocol: str | None) -> str:
        """Gitlab::Checks::ContainerMoved#message."""
        return (
            f"Project '{old_path}' was moved to '{new_path}'.\n\n"
            "Please update your Git remote:\n\n"
            f"  git remote set-url origin {self.url_to_repo(new_path, protocol)}\n"
        )

    def project_created_message(self, full_path: str, protocol: str | None) -> str:
        """Gitlab::Checks::ProjectCreated#message."""
        return (
            f"\nThe private project {full_path} was successfully created.\n\n"
            "To configure the remote, run:\n"
            f"  git remote add origin {self.url_to_repo(full_path, protocol)}\n\n"
            "To view the project, visit:\n"
            f"  {self.project_url(full_path)}\n\n"
        )

    def new_merge_request_url(self, full_path: str, branch: str) -> str:
        from urllib.parse import quote

        return f"{self.base}/{full_path}/-/merge_requests/new?merge_request%5Bsource_branch%5D={quote(branch, safe='')}"

    def merge_request_url(self, full_path: str, iid: int) -> str:
        return f"{self.base}/{full_path}/-/merge_requests/{iid}"
