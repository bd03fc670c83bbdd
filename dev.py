#!/usr/bin/env python3
"""Zero-setup entry point: `python3 dev.py serve` runs the service, `python3 dev.py test` runs the tests.

Needs only Python 3.11+. It creates `.venv/` next to this file, installs the pinned, hashed packages
of `requirements/dev.lock` into it (again only when the lock or pyproject.toml changed; `.ci/relock`
rebuilds the locks), and then runs the command inside it. Anything after the command name is passed
on unchanged. Secret files and the embedded servers' `.state/` live in this checkout
(GITLAB_INTERNAL_API_ROOT defaults to it here), whatever the working directory.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-from"
LOCK = ROOT / "requirements" / "dev.lock"
INPUTS = (LOCK, ROOT / "pyproject.toml")

USAGE = """usage: python3 dev.py COMMAND [ARGS...]

  serve [--config F] [--host H] [--port P] [--workers N]
                                              run the service (embedded PostgreSQL/Redis unless
                                              DATABASE_URL / REDIS_URL are set); serve --help: all options
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
    started = time.monotonic()
    if not python.exists():
        _say(f"creating the virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    count = sum(1 for line in LOCK.read_text().splitlines() if "==" in line)
    _say(
        f"installing {count} pinned packages from {LOCK.relative_to(ROOT)} (hashes checked); "
        "the first time this downloads about 150 MB and takes a minute or two"
    )
    subprocess.check_call([*pip, "install", "--require-hashes", "-r", str(LOCK)])
    _say("installing this checkout into it (editable)")
    subprocess.check_call([*pip, "install", "--no-deps", "-e", str(ROOT)])
    STAMP.write_text(wanted)
    _say(f"ready in {time.monotonic() - started:.0f} s; next time this step is skipped")
    return python


def _say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    python = ensure_venv()
    # secret files and .state/ in this checkout, unless the caller chose another root
    os.environ.setdefault("GITLAB_INTERNAL_API_ROOT", str(ROOT))
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
    if command in {"test", "bench"}:
        os.chdir(ROOT)  # pytest finds pyproject.toml here; serve/cli keep the caller's directory for --config
    os.execv(args[0], args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
