"""The admin errors are the domain's: service/domain/errors.py (kept so `AdminError` still names them)."""

from __future__ import annotations

from service.domain.errors import DomainError

AdminError = DomainError
