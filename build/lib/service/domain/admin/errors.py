"""What admin operations raise; service/routes/admin/common.py renders each in GitLab's shape."""

from __future__ import annotations

from typing import Any


class AdminError(Exception):
    pass


class Invalid(AdminError):
    """render_validation_error!: 400 {"message": {"attr": ["error", ...]}}."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class Conflict(AdminError):
    """conflict!(message): 409 {"message": message}."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Missing(AdminError):
    """not_found!(resource): 404 "404 <resource> Not Found"; without a resource, RecordNotFound's
    lower-case "404 Not found"."""

    def __init__(self, resource: str | None = None) -> None:
        super().__init__(resource)
        self.resource = resource


class Denied(AdminError):
    """forbidden!(reason): 403 "403 Forbidden - <reason>"."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(AdminError):
    """bad_request!(reason): 400 "400 Bad request - <reason>"."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiMessage(AdminError):
    """render_api_error!(message, status): the message as is, with a status of the endpoint's choosing."""

    def __init__(self, message: Any, status: int) -> None:
        super().__init__(message, status)
        self.message = message
        self.status = status
