"""Named SQL from service/sql/*.sql, loaded once at import ("SQL is code", after aiosql).

A block starts with `-- name: <identifier><shape>`, is followed by comment lines saying what it
does, and holds exactly one statement with native $1 parameters, runnable unchanged in psql. The
shape suffix is aiosql's, so the files say what each query returns and aiosql can load them too
(tests/test_sql_files.py holds the two loaders to the same reading):

    (none)  many rows          conn.fetch
    ^       one row or none    conn.fetchrow
    $       one value          conn.fetchval
    !       no result          conn.execute
    <!      a write's RETURNING (one row, or its one value)   conn.fetchrow / conn.fetchval
    *!      one statement, many argument tuples               conn.executemany
    #       a script without parameters                       conn.execute

A db module binds each name at import time through the accessor for the shape it runs the query
with (`one`, `value`, `many`, `statement`, `returning`, `statement_many`, `script`), so a missing
name or a mismatched shape stops the service from starting. The accessors return the bare SQL
text: call sites keep calling `conn.fetchrow(_FIND, ...)` directly, with no wrapper per query (our
own loader rather than aiosql's at run time: bench/sql_loader.py measures why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# Inside the package (package data in pyproject.toml), so an installed wheel carries it.
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"

Shape = Literal["", "^", "$", "!", "<!", "*!", "#"]
SHAPES: tuple[Shape, ...] = ("", "^", "$", "!", "<!", "*!", "#")

# The two-character markers come first so that "<!" is not read as a name followed by "<" and "!".
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*(<!|\*!|\^|\$|!|#)?\s*$", re.MULTILINE)
_NAME_LINE = re.compile(r"^--\s*name:", re.MULTILINE)


@dataclass(frozen=True)
class Query:
    """A statement's text with the name and shape it was declared with."""

    name: str
    shape: Shape
    text: str


def load_queries(directory: Path = SQL_DIR) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text()
        matches = list(_NAME.finditer(text))
        if len(matches) != len(_NAME_LINE.findall(text)):
            raise ValueError(f"{path.name}: a '-- name:' line is not '<identifier>' plus one of {SHAPES}")
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
            shape: Shape = match.group(2) or ""  # type: ignore[assignment]  # the regex admits only SHAPES
            queries[name] = Query(name, shape, body.rstrip(";"))
    return queries


_QUERIES = load_queries()


def _text(name: str, *shapes: Shape) -> str:
    try:
        query = _QUERIES[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {SQL_DIR}") from None
    if query.shape not in shapes:
        expected = " or ".join(repr(shape) for shape in shapes)
        raise TypeError(f"query {name!r} is marked {query.shape!r}, but the caller runs it as {expected}")
    return query.text


def many(name: str) -> str:
    """A query returning rows (no marker), for `conn.fetch`."""
    return _text(name, "")


def one(name: str) -> str:
    """A query returning one row or none (`^`), for `conn.fetchrow`."""
    return _text(name, "^")


def value(name: str) -> str:
    """A query returning one value (`$`), for `conn.fetchval`."""
    return _text(name, "$")


def statement(name: str) -> str:
    """A statement without a result (`!`), for `conn.execute`."""
    return _text(name, "!")


def returning(name: str) -> str:
    """An insert, update or delete with RETURNING (`<!`), for `conn.fetchrow` or `conn.fetchval`."""
    return _text(name, "<!")


def statement_many(name: str) -> str:
    """A statement run once per argument tuple (`*!`), for `conn.executemany`."""
    return _text(name, "*!")


def script(name: str) -> str:
    """Statements without parameters (`#`), for `conn.execute`."""
    return _text(name, "#")
