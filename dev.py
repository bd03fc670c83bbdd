#!/usr/bin/env python3
"""Zero-setup entry point: `python3 dev.py serve` runs the service, `python3 dev.py test` runs the tests.

Needs only Python 3.11+. It creates `.venv/` next to this file, installs the pinned packages of
`requirements.lock` into it (again only when the lock or pyproject.toml changed), and then runs
the command inside it. Anything after the command name is passed on unchanged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-from"
INPUTS = (ROOT / "requirements.lock", ROOT / "pyproject.toml")

USAGE = """usage: python3 dev.py COMMAND [ARGS...]

  serve [--host H] [--port P] [--workers N]   run the service (embedded PostgreSQL/Redis unless
                                              DATABASE_URL / REDIS_URL are set)
  test [PYTEST ARGS]                          run the whole test suite
  lint                                        ruff and mypy --strict
  bench [ARGS]                                run the load benchmark in bench/
  cli ARGS                                    any other gitlab-internal-api subcommand
                                              (migrate, seed-demo, create-admin ...)
"""


def _digest() -> str:
    h = hashlib.sha256()
    for path in INPUTS:
        h.update(path.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def ensure_venv() -> Path:
    python = BIN / "python"
    wanted = _digest()
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return python
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not python.exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    print("dev.py: installing pinned packages into .venv", file=sys.stderr)
    subprocess.check_call([*pip, "install", "-r", str(ROOT / "requirements.lock")])
    subprocess.check_call([*pip, "install", "--no-deps", "-e", str(ROOT)])
    STAMP.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    python = ensure_venv()
    if command == "test":
        args = [str(python), "-m", "pytest", *rest]
    elif command == "serve":
        args = [str(python), "-m", "service", "serve", *rest]
    elif command == "lint":
        bin_dir = python.parent
        ruff = subprocess.call([str(bin_dir / "ruff"), "check", "service", "schemas", "tests", "bench", "dev.py"], cwd=ROOT)
        mypy = subprocess.call([str(bin_dir / "mypy")], cwd=ROOT)
        return 1 if ruff or mypy else 0
    elif command == "bench":
        args = [str(python), str(ROOT / "bench" / "run.py"), *rest]
    elif command == "cli":
        args = [str(python), "-m", "service", *rest]
    else:
        print(USAGE, file=sys.stderr)
        return 2
    os.chdir(ROOT)
    os.execv(args[0], args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
