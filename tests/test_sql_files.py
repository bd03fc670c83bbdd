"""The .sql files say what each query returns with aiosql's markers, and both loaders agree on them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service.db import queries
from service.db.queries import SQL_DIR, load_queries

DB_DIR = Path(queries.__file__).parent
# how a db module runs a query, by the accessor it bound the text with
_METHODS = {
    "many": {"fetch"},
    "one": {"fetchrow"},
    "value": {"fetchval"},
    "statement": {"execute"},
    "returning": {"fetchrow", "fetchval"},
    "statement_many": {"executemany"},
    "script": {"execute"},
}


def test_every_query_has_a_known_shape_and_a_statement():
    loaded = load_queries()
    assert "git_access_contexts" in loaded and "post_receive_contexts" in loaded
    for name, query in loaded.items():
        assert query.name == name
        assert query.shape in queries.SHAPES, name
        assert query.text.strip() and not query.text.lstrip().startswith("--"), name


def test_a_caller_expecting_another_shape_fails_at_import():
    with pytest.raises(TypeError, match="marked '\\^'"):
        queries.value("find_key_actor")
    with pytest.raises(KeyError):
        queries.one("no_such_query")


def test_a_name_line_without_a_known_marker_is_refused(tmp_path):
    (tmp_path / "bad.sql").write_text("-- name: find_it?\nSELECT 1;\n")
    with pytest.raises(ValueError, match="bad.sql"):
        load_queries(tmp_path)


def test_db_modules_run_each_query_the_way_its_marker_says():
    """`_X = one("name")` is only ever passed to conn.fetchrow, and so on for each shape."""
    checked = 0
    for path in sorted(DB_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        accessor_of: dict[str, str] = {}
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id in _METHODS
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        accessor_of[target.id] = node.value.func.id
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"fetch", "fetchrow", "fetchval", "execute", "executemany"}
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in accessor_of
            ):
                accessor = accessor_of[node.args[0].id]
                assert node.func.attr in _METHODS[accessor], f"{path.name}:{node.lineno}: {accessor} query run by {node.func.attr}"
                checked += 1
    assert checked > 100


def test_aiosql_reads_the_same_names_and_shapes():
    aiosql = pytest.importorskip("aiosql")
    from aiosql.types import SQLOperationType

    shape_of = {
        SQLOperationType.SELECT: "",
        SQLOperationType.SELECT_ONE: "^",
        SQLOperationType.SELECT_VALUE: "$",
        SQLOperationType.INSERT_UPDATE_DELETE: "!",
        SQLOperationType.INSERT_RETURNING: "<!",
        SQLOperationType.INSERT_UPDATE_DELETE_MANY: "*!",
        SQLOperationType.SCRIPT: "#",
    }
    # Our queries take native $1 parameters, so they declare no named parameter list.
    loaded = aiosql.from_path(SQL_DIR, "asyncpg", mandatory_parameters=False)
    theirs = {
        name: shape_of[getattr(loaded, name).operation]
        for name in loaded.available_queries
        if "." not in name  # migrations/ is a sub-directory of scripts without names
        and not name.endswith("_cursor")
    }
    ours = {name: query.shape for name, query in load_queries().items()}
    assert theirs == ours
