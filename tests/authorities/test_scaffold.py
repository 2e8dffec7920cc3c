"""`fiscalgate new-authority`: the folder it writes is a working authority that the registry, the
shared contract tests and the linters accept, with no other edit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fiscalgate.authorities as registry
from fiscalgate.authorities import scaffold

ROOT = Path(__file__).parents[2]
BOUND = 120  # seconds for each subprocess; the whole test takes about 20 s


def _free_code(base: str = "sn-demo") -> str:
    """`base`, or `base2`, `base3`...: the first code whose names no registered authority holds
    (a contributor who ran `fiscalgate new-authority sn-demo` has taken sn-demo and demo)."""
    taken = {name for d in registry.descriptors() for name in d.names()}
    code, n = base, 1
    while code in taken or code.split("-", 1)[1] in taken:
        n += 1
        code = f"{base}{n}"
    return code


CODE = _free_code()
PKG = CODE.replace("-", "_")


def test_codes_and_countries_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    for code, country, complaint in [
        ("sn_demo", "SN", "cc-name"),
        (CODE, "SEN", "ISO 3166"),
        ("tg-demo", "SN", "must start with its country"),
        ("ci-fne", "CI", "already names"),
        ("ci-fne2", "CI", None),
    ]:
        if complaint is None:
            assert scaffold.check(code, country, "XOF").pkg == "ci_fne2"
            continue
        with pytest.raises(scaffold.ScaffoldError, match=complaint):
            scaffold.check(code, country, "XOF")
    with pytest.raises(scaffold.ScaffoldError, match="ISO 4217"):
        scaffold.check(CODE, "SN", "francs")
    (tmp_path / "__init__.py").write_text("no marker here\n", encoding="utf-8")
    with pytest.raises(scaffold.ScaffoldError, match="marker"):
        scaffold.generate(CODE, "SN", package_dir=tmp_path, tests_dir=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["__init__.py"]


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    package_dir = tmp_path / "authorities"
    shutil.copytree(
        ROOT / "src/fiscalgate/authorities", package_dir, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package_dir / PKG).mkdir()
    before = (package_dir / "__init__.py").read_text(encoding="utf-8")
    with pytest.raises(scaffold.ScaffoldError, match="already exists"):
        scaffold.generate(CODE, "SN", package_dir=package_dir, tests_dir=None)
    assert (package_dir / "__init__.py").read_text(encoding="utf-8") == before
    assert list((package_dir / PKG).iterdir()) == []


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=BOUND
    )


def test_a_generated_authority_works_in_a_copy_of_the_package(tmp_path: Path) -> None:
    """Generate CODE into a copy of the source tree, then, in that copy (a fresh interpreter): its
    own tests, the shared contract tests and the mock-restart tests (its simulator's memory
    outlives a gateway restart) pass on it, and it lints clean."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    tests = tmp_path / "tests" / "authorities"
    tests.mkdir(parents=True)
    shutil.copy(ROOT / "tests/authorities/test_shared_contract.py", tests)
    for name in ("__init__.py", "conftest.py"):
        shutil.copy(ROOT / "tests" / name, tmp_path / "tests")
    gateway_tests = tmp_path / "tests" / "gateway"
    gateway_tests.mkdir()
    for name in ("__init__.py", "conftest.py", "fake_driver.py", "test_mock_restart.py"):
        shutil.copy(ROOT / "tests/gateway" / name, gateway_tests)

    written = scaffold.generate(
        CODE, "SN", package_dir=tmp_path / "src/fiscalgate/authorities", tests_dir=tests
    )
    assert tests / PKG / f"test_{PKG}.py" in written
    package = tmp_path / "src/fiscalgate/authorities" / PKG
    shape = {"descriptor.py", "settings.py", "schemas.py", "totals.py", "convert.py", "client.py",
             "errors.py", "printing.py", "driver.py", "regime.py", "README.md", "__init__.py"}  # fmt: skip
    assert shape <= {p.name for p in package.iterdir()}
    assert {"app.py", "state.py", "cli.py"} <= {p.name for p in (package / "simulator").iterdir()}

    registry = (tmp_path / "src/fiscalgate/authorities/__init__.py").read_text(encoding="utf-8")
    lines = [line.strip() for line in registry.splitlines() if line.strip().endswith('.descriptor",')]
    assert lines[-1] == f'"fiscalgate.authorities.{PKG}.descriptor",'  # registered after the others

    checked = _run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", f"{CODE} or {PKG}", "tests"], tmp_path
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " passed" in checked.stdout and "failed" not in checked.stdout

    # The restart test certifies with every registered authority, the new one included, then credits
    # those invoices after the restart. SQLite only: what is kept and how is the gateway's code,
    # which the main suite runs on PostgreSQL too.
    restart_tests = ["-k", "sqlite", "tests/gateway/test_mock_restart.py"]
    restarted = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", *restart_tests], tmp_path)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "5 passed" in restarted.stdout, restarted.stdout

    for lint in (["check", str(package), str(tests / PKG)], ["format", "--check", str(package)]):
        linted = _run(["-m", "ruff", *lint], tmp_path)
        assert linted.returncode == 0, linted.stdout + linted.stderr
