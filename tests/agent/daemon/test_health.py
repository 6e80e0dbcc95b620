"""Health checks that need no running agent: the data dir (store and journal)."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_settings
from agent.daemon.health import health_view
from agent.daemon.parts import Runtime


def test_a_data_dir_that_is_not_a_folder_fails_the_journal_check(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    health = health_view(Runtime(load_settings(data_dir=blocked))).model_dump()
    assert health["checks"]["journal"] == {
        "ok": False,
        "detail": f"data dir {blocked} is not a folder",
    }
    assert health["is_healthy"] is False


def test_before_start_the_model_check_says_so(tmp_path: Path):
    runtime = Runtime(load_settings(data_dir=tmp_path))
    runtime.startup_error = "model /m.gguf failed to load"
    health = health_view(runtime).model_dump()
    assert health["is_healthy"] is False
    assert health["checks"]["model"] == {"ok": False, "detail": "model not loaded yet"}
    assert health["reasons"][0] == "start-up failed: model /m.gguf failed to load"
    assert health["checks"]["journal"]["ok"] is True
