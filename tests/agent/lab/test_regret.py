"""The regret table's bookkeeping on hand-made states: expected value, regret, hits, timing."""

from __future__ import annotations

from agent.lab.regret import for_scale, regret_table, scored
from agent.lab.value_fit import State
from agent.reports.tables import markdown

NAMES = ["hold 10", "buy_risk 50", "sell_risk 50"]


def state(values: list[float], gap_bin: int | None) -> State:
    situation = None if gap_bin is None else (gap_bin, 1, 0, 0)
    return State([1], [[2], [3], [4]], [1 / 3] * 3, values, NAMES, situation)


STATES = [
    state([10.0, 14.0, 8.0], 0),  # well below: buying is best
    state([10.0, 9.0, 12.0], 6),  # well above: selling is best
    state([10.0, 9.0, 12.0], 5),  # well above
    state([10.0, 10.0, 10.0], 3),  # near: all alike
    state([10.0, 11.0, 9.0], None),  # a row without its situation
]


def test_a_chooser_that_always_sells_has_its_timing_counted_by_the_gap():
    always_sell = scored("seller", STATES, [2] * 5, [[0.0, 0.0, 1.0]] * 5)
    assert (always_sell.below, always_sell.buys_below) == (1, 0)
    assert (always_sell.above, always_sell.sells_above) == (2, 2)
    assert always_sell.argmax_best == 3  # the two above, and the state where all are alike
    assert always_sell.regret == round((6 + 0 + 0 + 0 + 2) / 5, 3)
    assert always_sell.liked == {"sell_risk 50": 5}


def test_the_best_answer_times_perfectly_and_the_uniform_answer_has_no_timing():
    uniform, best, _ = for_scale(STATES)
    assert (best.buys_below, best.below, best.sells_above, best.above) == (1, 1, 2, 2)
    assert best.regret == 0 and best.argmax_best == 5
    assert best.liked == {"buy_risk 50": 2, "sell_risk 50": 2, "hold 10": 1}
    assert (uniform.below, uniform.above) == (0, 0) and uniform.argmax_best == round(1 / 3 * 4 + 1)
    text = markdown(regret_table([uniform, best]))
    assert "buys 1/1 below, sells 2/2 above" in text


def test_the_best_answer_per_situation_is_one_answer_for_all_states_of_a_situation():
    """Two states of one situation that want different answers: the bound takes the answer worth
    most over both (buying: 14 + 9 against selling's 8 + 12), so the second state's regret stays."""
    split = [state([10.0, 14.0, 8.0], 0), state([10.0, 9.0, 12.0], 0), *STATES[1:]]
    bound = for_scale(split)[2]
    assert bound.name == "best answer per situation"
    assert bound.liked == {"buy_risk 50": 3, "sell_risk 50": 2, "hold 10": 1}
    assert bound.regret == round(3 / 6, 3) and bound.argmax_best == 5
    assert for_scale(STATES)[2].regret == 0  # one state per situation: the best answer itself
