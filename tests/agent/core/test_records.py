"""The tick's records as plain values: what `plain` gives is what `dataclasses.asdict` gives."""

from __future__ import annotations

import dataclasses
import json
from collections import namedtuple
from pathlib import Path

from agent.core.records import TickRecord, plain
from agent.core.strategies import RuleDecider
from agent.lab.calibrate import paper_agent, params_from
from agent.lab.paper_market import open_world
from agent.runtime.store import Store
from arena.weather import FlowParams, WeatherParams
from tests.conftest import settings_for


def lived(tmp_path: Path, ticks: int) -> list[TickRecord]:
    """A random strategy's records on a paper arena (it trades, pays rent, is refused)."""
    settings = settings_for(tmp_path)
    params = params_from(settings, [7], ticks, 5)
    world = open_world(settings, WeatherParams(7, **params.weather), FlowParams(**params.flow), 5)
    records = []
    with Store(Path(":memory:"), durable=False) as store:
        agent = paper_agent(settings, world, RuleDecider("random", seed=7), store, "plain")
        for tick in range(ticks):
            world.advance(tick, params.steps_per_tick)
            record = agent.tick()
            assert record is not None
            records.append(record)
    return records


def test_plain_is_asdict_for_every_record_of_a_life(tmp_path: Path):
    records = lived(tmp_path, 40)
    kinds = {r.action.kind if r.action else "veto" for r in records}
    assert len(kinds) > 1, kinds  # more than one kind of tick was compared
    prompt = ({"role": "system", "content": "be brief"}, {"role": "user", "content": "tick 3"})
    asked = dataclasses.replace(records[3].decision, prompt=prompt)
    for record in [*records, dataclasses.replace(records[3], decision=asked)]:
        expected = dataclasses.asdict(record)
        got = plain(record)
        assert got == expected
        assert json.dumps(got) == json.dumps(expected)  # tuples stay tuples, keys in order
    assert plain(asked)["prompt"] == prompt and plain(asked)["prompt"][0] is not prompt[0]


def test_plain_leaves_other_values_to_asdict():
    """A namedtuple, a subclass of dict and a set: whatever asdict makes of them, so does plain."""
    Pair = namedtuple("Pair", "a b")

    class Tagged(dict):  # type: ignore[type-arg]
        pass

    @dataclasses.dataclass
    class Holder:
        pair: Pair
        tagged: Tagged
        seen: set[int]
        nested: list[dict[str, tuple[int, ...]]]

    held = Holder(Pair(1, [2]), Tagged(x=1), {3}, [{"k": (1, 2)}])
    got = plain(held)
    assert got == dataclasses.asdict(held)
    assert type(got["pair"]) is Pair and type(got["tagged"]) is Tagged
    assert got["seen"] is not held.seen and got["pair"].b is not held.pair.b
