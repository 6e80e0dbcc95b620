"""The book of lives: what was measured before an interruption is read back whole."""

from __future__ import annotations

from pathlib import Path

from agent.core.lives import Life
from agent.lab.book import LifeBook, who

WORLD = {"ticks": 300, "weather": {"volatility": 0.01}}


def life(seed: int) -> Life:
    return Life(
        strategy="llm",
        seed=seed,
        ticks_lived=3,
        alive=False,
        final_worth=1.5,
        worth=(10.0, 5.0, 1.5),
        answers=("buy_risk 25", "hold 10", "sell_risk 100"),
        gaps=(None, -0.03, 0.01),
        actions={"buy_risk": 1},
        name="gen1",
        death_cause="rent",
    )


def test_lives_are_read_back_as_they_were_and_only_for_the_same_contestant_and_world(
    tmp_path: Path,
):
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"weights")
    me = who("gen1", "llm", "plain", adapter, temperature=0.3)
    book = LifeBook(tmp_path / "lives.jsonl")
    book.add(me, 1000, WORLD, life(1000))
    again = LifeBook(tmp_path / "lives.jsonl")
    assert len(again) == 1 and again.get(me, 1000, WORLD) == life(1000)  # tuples stay tuples
    assert again.get(me, 1001, WORLD) is None
    assert again.get(me, 1000, {**WORLD, "ticks": 301}) is None
    assert again.get(who("gen1", "llm", "plain", adapter, temperature=0.0), 1000, WORLD) is None
    adapter.write_bytes(b"other weights")  # the same name, another adapter: another contestant
    assert again.get(who("gen1", "llm", "plain", adapter, temperature=0.3), 1000, WORLD) is None


def test_a_line_cut_by_a_crash_is_lived_again_and_the_rest_kept(tmp_path: Path):
    path = tmp_path / "lives.jsonl"
    me = who("hold", "hold", None, None)
    book = LifeBook(path)
    book.add(me, 1, WORLD, life(1))
    book.add(me, 2, WORLD, life(2))
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the second line cut short
    kept = LifeBook(path)
    assert len(kept) == 1 and kept.get(me, 1, WORLD) == life(1) and kept.get(me, 2, WORLD) is None
    kept.add(me, 2, WORLD, life(2))  # appended after the cut line, read back whole
    assert LifeBook(path).get(me, 2, WORLD) == life(2)
