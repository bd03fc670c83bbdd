"""Named SQL from service/sql/*.sql, loaded once at import ("SQL is code", after aiosql).

A block starts with `-- name: <identifier>`, is followed by comment lines saying what it does, and
holds exactly one statement with native $1 parameters, runnable unchanged in psql. A db module
binds its names at import time, so a missing or misspelt name stops the service from starting.
"""

from __future__ import annotations

import re
from pathlib import Path

# Inside the package (package data in pyproject.toml), so an installed wheel carries it.
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(directory: Path = SQL_DIR) -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text()
        matches = list(_NAME.finditer(text))
        for index, match in enumerate(matches):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            body = "\n".join(
                line for line in text[match.end() : end].splitlines() if not line.lstrip().startswith("--")
            ).strip()
            name = match.group(1)
            if name in queries:
                raise ValueError(f"{path.name}: query {name!r} is defined twice")
            if not body:
                raise ValueError(f"{path.name}: query {name!r} has no statement")
            queries[name] = body.rstrip(";")
    return queries


_QUERIES = load_queries()


def sql(name: str) -> str:
    """The statement named `name`; raises KeyError at import of the caller when it does not exist."""
    try:
        return _QUERIES[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {SQL_DIR}") from None
