"""The README's CLI walkthrough runs as it is written: its block is extracted and each line run
with the same arguments, in a copy of its working directory, with only the simulators' ports
moved to free ones (other test runs share this machine). Lines run in-process (`fiscalgate` is
`fiscalgate.cli:main`; a line ending with `&` serves its simulator in a thread) rather than as
processes, whose start-up alone would cost seconds each on a loaded machine."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fiscalgate.cli import main
from fiscalgate.simkit.serve import free_port, serve_in_thread

ROOT = Path(__file__).parents[1]
PORTS = ("8010", "8088", "8083")
SIMULATOR_CLI = {
    "ci-fne": "fiscalgate.authorities.ci_fne.simulator.cli",
    "bj-emecef": "fiscalgate.authorities.bj_emecef.simulator.cli",
    "cg-sfec": "fiscalgate.authorities.cg_sfec.simulator.cli",
}


def walkthrough() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Without the gateway: the CLI", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.socket
def test_the_cli_walkthrough_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = walkthrough()
    assert lines[0] == ". .venv/bin/activate" and lines[-1] == "kill %1 %2 %3"
    for port in PORTS:
        assert any(f"--port {port}" in line for line in lines), port
    # Its working directory: the repository's example files (var/ is written there).
    examples = Path("src", "fiscalgate", "authorities")
    shutil.copytree(ROOT / examples, tmp_path / examples)
    monkeypatch.chdir(tmp_path)
    moved = {port: str(free_port()) for port in PORTS}
    runner = CliRunner()
    with ExitStack() as background:
        for cli in SIMULATOR_CLI.values():  # `&`: the simulator serves while the next lines run
            monkeypatch.setattr(
                importlib.import_module(cli),
                "run_forever",
                lambda app, host, port: background.enter_context(serve_in_thread(app, port)),
            )
        started = 0
        for line in lines[1:-1]:
            command = line.removesuffix("&").strip()
            for port, free in moved.items():
                command = command.replace(port, free)
            argv: list[Any] = shlex.split(command)
            assert argv[0] == "fiscalgate", line
            result = runner.invoke(main, argv[1:])
            assert result.exit_code == 0, f"{line}\n{result.output}"
            started += line.endswith("&")
    assert started == 3
    assert (tmp_path / "var" / "walkthrough" / "fne.json").is_file()  # --state kept the FNE memory
