"""The timing controls: a rule that trades on the gap beats its own answers shuffled in time and
every constant answer, its answers follow the gap, and the gap a life records is the one the
decider was shown."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

from agent.core.prompt import decision_from_text, price_gap
from agent.core.records import Decision, Observation
from agent.lab.calibrate import live, params_from
from agent.lab.evaluate import Contestant, evaluate
from agent.lab.timing import CONSTANT_ANSWERS, ScriptDecider, mutual_information, timing
from tests.conftest import settings_for

SEEDS = range(1000, 1004)  # held out, as evaluations use
TICKS = 300  # whole lives: hold dies near 206, mean_reversion lives


def test_mutual_information_is_zero_when_independent_and_the_entropy_when_determined():
    independent = [(a, b) for a in "xy" for b in "uvw"] * 5
    assert math.isclose(mutual_information(independent), 0.0, abs_tol=1e-12)
    determined = [("buy", "below"), ("sell", "above"), ("hold", "inside")] * 7
    assert math.isclose(mutual_information(determined), math.log2(3))
    assert mutual_information([]) == 0.0


def test_a_script_keeps_its_mix_of_answers_past_its_end(tmp_path: Path):
    script = ["buy_risk 25", "hold 10", "sell_risk 50"]
    decider = ScriptDecider(script, random.Random(1), "script")  # noqa: S311
    settings = settings_for(tmp_path)
    life = live(settings, params_from(settings, [0], 9, 1), "llm", 0, decider, name="script")
    assert life.ticks_lived == 9
    assert life.answers[:3] == tuple(script)
    assert Counter(life.answers) == Counter(dict.fromkeys(script, 3))  # three rounds of the mix
    assert len(set(life.answers[3:6])) == 3 and len(set(life.answers[6:])) == 3


class GapWitness:
    """Holds, and writes down the gap each observation came with."""

    name = "witness"

    def __init__(self) -> None:
        self.gaps: list[float | None] = []

    def close(self) -> None:
        """Nothing to free."""

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        self.gaps.append(price_gap(obs.price, recent_prices) if recent_prices else None)
        return decision_from_text('{"action": "hold", "amount_pct": 10}', "witness", obs)


def test_a_life_records_the_gap_its_decider_was_shown(tmp_path: Path):
    settings = settings_for(tmp_path)
    witness = GapWitness()
    life = live(settings, params_from(settings, [7], 40, 4), "llm", 7, witness, name="witness")
    assert life.gaps == tuple(witness.gaps)
    assert life.gaps[0] is None and all(g is not None for g in life.gaps[1:])
    assert any(abs(g) > 0.001 for g in life.gaps[1:] if g is not None)  # the price moved
    assert set(life.answers) == {"hold 10"}


def test_a_rule_that_trades_the_gap_beats_its_shuffled_answers_and_every_constant(
    tmp_path: Path,
):
    settings = settings_for(tmp_path)
    ev = evaluate(
        settings,
        Contestant("random", "random"),
        Contestant("mean_reversion", "mean_reversion"),
        SEEDS,
        TICKS,
        baselines=("hold",),
        resamples=500,
    )
    c = ev.controls
    assert c is not None
    assert c.shuffled["expected_life"].low > 0  # the same answers, out of time, die sooner
    assert c.constant["expected_life"].low > 0
    assert set(c.constants) == set(CONSTANT_ANSWERS) and c.best_constant in CONSTANT_ANSWERS
    assert c.constants[c.best_constant] == max(c.constants.values())
    by_name = {t.name: t for t in c.timing}
    assert list(by_name) == ["random", "mean_reversion", "hold", "mean_reversion shuffled"]
    mr, hold = by_name["mean_reversion"], by_name["hold"]
    shuffled = by_name["mean_reversion shuffled"]
    assert mr.below > 0 and mr.above > 0
    assert mr.buy_below > mr.buy_above and mr.sell_above > mr.sell_below
    assert mr.mutual_information_bits > 10 * shuffled.mutual_information_bits
    assert hold.buy_below == hold.buy_above == 0.0
    mr_lives = [x for x in ev.lives if x.name == "mean_reversion"]
    assert timing("mean_reversion", mr_lives) == mr
