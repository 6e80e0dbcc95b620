"""A generation's stand-in: the table, its fallbacks and its file; fitted to the best rule
teacher's lives it answers as the teacher does on a life it never saw, and labels made with it
as the continuation are, but for a few answers, the teacher's own labels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from agent.cli.main import main
from agent.errors import ConfigError
from agent.lab.standin import EDGES, StandIn, ceiling, check_policy, fit, gap_bin


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The commands configure logging to the test's own (then closed) stderr: put it back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


SMALL_LABELS = ["--seeds", "1", "--first-seed", "7", "--ticks", "120", "--every", "23"]
SMALL_LABELS += ["--horizon", "30", "--futures", "4", "--visitors", "mean_reversion"]


def test_the_gap_falls_in_bins_at_the_edges():
    assert gap_bin(None) == -1
    assert [gap_bin(g) for g in (-0.05, -0.03, -0.015, 0.0, 0.015, 0.03, 0.05)] == list(range(7))
    assert gap_bin(EDGES[0]) == 1  # an edge belongs to the bin above it


def test_the_table_answers_its_situations_and_falls_back_from_the_pool_to_the_gap(
    tmp_path: Path,
):
    pairs = [
        ((0, 1, False, 0), "buy_risk 25"),
        ((0, 1, False, 0), "buy_risk 25"),
        ((0, 1, False, 0), "hold 10"),
        ((0, 1, False, 0), "buy_risk 50"),
        ((0, 2, False, 0), "sell_risk 25"),
        ((6, 1, False, 0), "sell_risk 25"),
        ((3, 0, False, 1), "pay_rent 100"),
    ]
    s = fit("gen1", pairs)
    assert s.answer((0, 1, False, 0)) == "buy_risk 25"  # the most frequent there
    assert s.answer((0, 1, True, 0)) == "buy_risk 25"  # never in the pool: as without it
    assert s.answer((6, 2, True, 1)) == "sell_risk 25"  # only the gap is known
    assert s.answer((5, 0, False, 0)) == s.default == "buy_risk 25"  # nothing is known
    assert s.agreement(pairs) == 5 / 7
    assert s.agreement(pairs, action_only=True) == 6 / 7  # buy_risk 50 is a buy, of another size
    # in (0, 1, False, 0) the model answered three ways: no table matches more than 2 of those 4
    assert ceiling(pairs) == (2 + 3) / 7
    assert ceiling([(where, "hold 10") for where, _ in pairs]) == 1
    path = tmp_path / "standin.json"
    s.save(path)
    assert StandIn.load(path) == s
    path.write_text('{"name": "gen1"}')
    with pytest.raises(ConfigError, match=r"stand-in .*standin\.json is not readable"):
        StandIn.load(path)
    with pytest.raises(ConfigError, match="no decisions"):
        fit("gen1", [])
    with pytest.raises(ConfigError, match="'nobody' is not a rule strategy"):
        check_policy("nobody")


def test_a_stand_in_of_the_teacher_answers_as_it_does_and_labels_as_it_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    lives = tmp_path / "lives"
    argv = ["arena", "calibrate", "--strategies", "mean_reversion", "--seeds", "4"]
    argv += ["--first-seed", "100", "--ticks", "300", "--keep", str(lives)]
    assert main([*argv, "--out", str(tmp_path / "report")]) == 0
    standin = tmp_path / "mr.json"
    argv = ["standin", "--name", "mr", "--out", str(standin), "--lives"]
    assert main([*argv, *map(str, sorted(lives.glob("mean_reversion-seed*")))]) == 0
    printed = capsys.readouterr().out
    assert "agreement with mr on 300 decisions of 1 other lives: 100.0%" in printed, printed

    def values(continuation: str) -> list[float]:
        out = tmp_path / f"{continuation.replace('/', '_')}.jsonl"
        assert (
            main(["label", "--out", str(out), *SMALL_LABELS, "--continuation", continuation]) == 0
        )
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 6
        return [c["value"] for r in rows for c in r["candidates"]]

    def distance(a: list[float], b: list[float]) -> float:
        return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)

    teacher, table = values("mean_reversion"), values(f"standin:{standin}")
    other = values("random")
    # Most answers are valued exactly as with the teacher; the rest lead to situations its
    # lives never met, where the table falls back. Another policy is worlds apart.
    assert sum(x == y for x, y in zip(teacher, table, strict=True)) >= 0.8 * len(teacher)
    assert distance(teacher, table) < 1.0 < 20 * distance(teacher, table) < distance(teacher, other)


def test_labels_refuse_an_unreadable_stand_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "labels.jsonl"
    missing = tmp_path / "gen9.json"
    assert main(["label", "--out", str(out), "--continuation", f"standin:{missing}"]) == 2
    assert "gen9.json is not readable" in capsys.readouterr().err and not out.exists()


def test_a_table_of_the_labels_best_answers_lives_beside_the_teacher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Labels carry each state's situation; `--labels` fits the table of its best answers and
    `--try` lives it on held-out seeds beside mean_reversion and hold."""
    labels = tmp_path / "labels.jsonl"
    assert main(["label", "--out", str(labels), *SMALL_LABELS]) == 0
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert all(
        len(r["situation"]) == 4 and all(type(x) is int for x in r["situation"]) for r in rows
    )
    assert rows[0]["situation"][0] == -1  # the first tick: no recent prices, no gap
    out = tmp_path / "best.json"
    argv = ["standin", "--labels", str(labels), "--name", "best", "--out", str(out)]
    assert main([*argv, "--check-share", "0", "--try", "2"]) == 0
    printed = capsys.readouterr().out
    significant = sum(r["significant"] for r in rows)
    assert f"from {significant} decisions of {significant} labelled states" in printed
    for name in ("best", "mean_reversion", "hold"):
        assert f"{name} on seeds 1000..1001, 300 ticks: alive " in printed
    assert "hold on seeds 1000..1001, 300 ticks: alive 0/2, expected life 206.0" in printed
