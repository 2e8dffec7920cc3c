"""The simulator is a second reading of the spec: it must not import the client side."""

from __future__ import annotations

import ast
from pathlib import Path

import fiscalgate.authorities.bj_emecef.simulator as simulator

ALLOWED_PREFIXES = ("fiscalgate.simkit", "fiscalgate.authorities.bj_emecef.simulator")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, (
                f"{path.name}: relative import (use absolute ones so this check sees them)"
            )
            names.append(node.module or "")
    return names


def test_simulator_imports_only_simkit_and_itself() -> None:
    files = sorted(Path(simulator.__file__).parent.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "state.py", "app.py", "cli.py"}
    offenders = {
        f"{f.name}: {name}"
        for f in files
        for name in _imports(f)
        if name.startswith("fiscalgate") and not name.startswith(ALLOWED_PREFIXES)
    }
    assert offenders == set()


def test_the_check_would_catch_a_client_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from fiscalgate.authorities.bj_emecef.regime import compute_totals\n", encoding="utf-8")
    assert _imports(bad) == ["fiscalgate.authorities.bj_emecef.regime"]
