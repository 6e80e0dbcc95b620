"""`forager`: every package's error is one line and exit 2; SDL defaults have one home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

from agent.cli import akash as akash_cli
from agent.cli import telemetry as telemetry_cli
from agent.cli.main import main, parser
from agent.config import load_settings, settings_env
from agent.errors import ConfigError
from akash.errors import AkashError
from akash.sdl import SdlOptions, render_sdl
from arena.errors import ArenaError
from telemetry.errors import TelemetryError
from tests.conftest import REPO
from wallets.errors import KeystoreError

MISSING_ANVIL = "anvil-not-installed"


def _without_anvil() -> dict[str, str]:
    """The environment with a PATH of system dirs only and an anvil that is nowhere."""
    return os.environ | {
        "PATH": os.pathsep.join(("/usr/bin", "/bin")),
        "FORAGER_ARENA__ANVIL": MISSING_ANVIL,
    }


def test_arena_up_without_anvil_is_one_line_and_exit_2(tmp_path: Path):
    """`forager arena up` with no anvil to be found: `forager: ...` on stderr, no traceback."""
    out = tmp_path / "arena.json"
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "arena", "up", "--out", str(out)],
        cwd=REPO,
        env=_without_anvil(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"forager: anvil binary {MISSING_ANVIL!r} not found")
    assert not out.exists()


def test_run_without_anvil_stops_at_once_with_exit_2(tmp_path: Path):
    """A missing anvil binary is not retried forever: `forager run` exits 2 and says why."""
    argv = ["run", "--data-dir", str(tmp_path / "agent"), "--port", "0", "--strategy", "hold"]
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", *argv],
        cwd=REPO,
        env=_without_anvil(),
        capture_output=True,
        text=True,
        timeout=120,  # a retry loop would never end: the guard turns that into a failure
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "agent_start_failed"]
    assert [e["error_type"] for e in failed] == ["AnvilMissing"]
    assert "retry_in_s" not in failed[0]


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("bad setting"),
        KeystoreError("bad keystore"),
        TelemetryError("bad exporter"),
        AkashError("bad lease"),
        ArenaError("bad world"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_package_error_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
):
    """Each package's base class reaches the user as `forager: <message>` and exit code 2."""

    def fail(args: Any) -> NoReturn:
        raise error

    monkeypatch.setattr(telemetry_cli, "_replay", fail)
    assert main(["telemetry", "replay", "--data-dir", "x"]) == 2
    assert capsys.readouterr().err == f"forager: {error}\n"


def test_other_errors_keep_their_traceback(monkeypatch: pytest.MonkeyPatch):
    """An error no package owns is a bug: it is not dressed up as a one-line message."""

    def fail(args: Any) -> NoReturn:
        raise RuntimeError("a bug")

    monkeypatch.setattr(telemetry_cli, "_replay", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["telemetry", "replay", "--data-dir", "x"])


def test_calibrate_names_unknown_strategies_before_any_life(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    """--strategies with an unknown name is refused up front, naming the flag and the choices."""
    import agent.lab.calibrate

    def never(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("calibrate ran with an unknown strategy")

    monkeypatch.setattr(agent.lab.calibrate, "calibrate", never)
    code = main(["arena", "calibrate", "--out", str(tmp_path / "c"), "--strategies", "hold,yolo"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("forager: --strategies 'hold,yolo': 'yolo' not known")
    assert "llm, hold" in err


def test_a_value_error_during_calibration_keeps_its_cause(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """A ValueError inside a life is not mistaken for a bad --strategies: it goes up unchanged."""
    import agent.lab.calibrate

    def broken(*args: Any, **kwargs: Any) -> NoReturn:
        raise ValueError("a bug inside a life")

    monkeypatch.setattr(agent.lab.calibrate, "calibrate", broken)
    with pytest.raises(ValueError, match="a bug inside a life"):
        main(["arena", "calibrate", "--out", str(tmp_path / "c"), "--strategies", "hold"])


def test_sdl_defaults_are_sdl_options_defaults(capsys: pytest.CaptureFixture[str]):
    """`akash sdl` with no flags renders SdlOptions(); a flag changes only its own option."""
    env = settings_env(load_settings())
    assert main(["akash", "sdl"]) == 0
    assert capsys.readouterr().out == render_sdl(SdlOptions(), env)
    assert main(["akash", "sdl", "--cpu", "2", "--denom", "uakt", "--env", "A=1"]) == 0
    wanted = SdlOptions(cpu=2.0, denom="uakt", env={"A": "1"})
    assert capsys.readouterr().out == render_sdl(wanted, env)


@pytest.mark.parametrize(
    ("argv", "options"),
    [
        (["fleet", "supervise", "--deployments", "d.json"], SdlOptions()),
        (["fleet", "supervise", "--deployments", "d.json", "--price", "7"], SdlOptions(price=7)),
        (["fleet", "deploy", "--agents", "1", "--strategies", "hold"], SdlOptions()),
        (
            ["fleet", "deploy", "--agents", "1", "--strategies", "hold", "--memory", "8Gi"],
            SdlOptions(memory="8Gi"),
        ),
    ],
)
def test_fleet_sdl_flags_fall_back_to_sdl_options(argv: list[str], options: SdlOptions):
    """fleet deploy and supervise pass only the SDL flags given; the rest are SdlOptions'."""
    assert akash_cli.sdl_options(parser().parse_args(argv)) == options
