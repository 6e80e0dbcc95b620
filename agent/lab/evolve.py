"""`forager evolve`: population → dataset → train → evaluate → next population, K times.

Generation 0 is the bundled model. For each generation g:

1. **Population.** The current model lives `population_seeds` fresh arena seeds (seeds g·S to
   g·S+S-1, all below the held-out range) beside rule-based *teachers* on the same seeds, on the
   paper arena; every life's store is kept under `gen<g>/population/`.
2. **Dataset.** `curated` rows (`telemetry.dataset.curated_rows`) of every population so far,
   one seed at a time so that each decision is judged against the others made in the same
   market at the same tick: the decisions that did better than that, holds capped at a third.
3. **Train.** A LoRA adapter on the base model from those rows (`agent.lab.train`), its manifest
   naming the parent generation and the population seeds.
4. **Evaluate.** Parent and child (and baselines) on the same held-out seeds
   (`agent.lab.evaluate`): the report goes to `gen<g+1>/evaluation.{json,md,png}`.
5. **Next.** The child becomes the current model unless it was measured worse; then the parent
   stays, and the next generation learns from one more population of it.

`evolve.json` in the output dir lists every generation's verdict and paths as it goes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.errors import ConfigError
from agent.lab.calibrate import Life, calibrate
from agent.lab.evaluate import HELD_OUT_FIRST_SEED, Contestant, evaluate, write_report
from agent.lab.train import TrainSettings, train
from telemetry.dataset import curated_rows, read_life


@dataclass(frozen=True)
class EvolveSettings:
    generations: int
    population_seeds: int = 4
    population_ticks: int = 100
    teachers: tuple[str, ...] = ("mean_reversion", "liquidity", "random")
    eval_seeds: int = 4
    eval_first_seed: int = HELD_OUT_FIRST_SEED
    eval_ticks: int = 100
    baselines: tuple[str, ...] = ("hold",)
    train: TrainSettings = field(
        default_factory=lambda: TrainSettings(steps=24, batch=4, learning_rate=3e-4)
    )


@dataclass
class GenerationReport:
    generation: int
    parent: str
    adapter: str
    dataset_rows: int
    population_seeds: list[int]
    verdict: str
    differences: dict[str, Any]
    evaluation: str
    seconds: dict[str, float]


def population_seeds(generation: int, settings: EvolveSettings) -> list[int]:
    first = generation * settings.population_seeds
    seeds = list(range(first, first + settings.population_seeds))
    if seeds[-1] >= settings.eval_first_seed:
        raise ConfigError(
            f"generation {generation}'s population seeds {seeds[0]}..{seeds[-1]} reach the "
            f"held-out seeds from {settings.eval_first_seed} (fewer generations or seeds)"
        )
    return seeds


def write_dataset(populations: list[Path], seeds: list[int], out: Path) -> int:
    """Curated rows from every kept life, judged seed by seed; returns how many."""
    count = 0
    with out.open("w") as handle:
        for seed in seeds:
            dirs = sorted(d for p in populations for d in p.glob(f"*-seed{seed}") if d.is_dir())
            lives = [life for d in dirs if (life := read_life(d)) is not None]
            for row in curated_rows(lives):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count


def evolve(
    settings: Settings,
    evolve_settings: EvolveSettings,
    out: Path,
    model_path: Path,
    cache_dir: Path,
    start: Path | None = None,
    say: Callable[[str], None] = print,
) -> list[GenerationReport]:
    """Run `generations` rounds; returns (and writes to `out/evolve.json`) their reports."""
    es = evolve_settings
    if es.generations < 1:
        raise ConfigError(f"--generations {es.generations} must be 1 or more")
    out.mkdir(parents=True, exist_ok=True)
    eval_seeds = list(range(es.eval_first_seed, es.eval_first_seed + es.eval_seeds))
    current = Contestant("gen0", adapter=start)
    populations: list[Path] = []
    seen_seeds: list[int] = []
    reports: list[GenerationReport] = []
    known: dict[str, tuple[Life, ...]] = {}  # lives already measured on the held-out seeds
    for g in range(es.generations):
        seconds: dict[str, float] = {}
        clock = time.monotonic()
        seeds = population_seeds(g, es)
        population = out / f"gen{g}" / "population"
        say(f"gen{g}: population of {current.name} and {', '.join(es.teachers)} on seeds {seeds}")
        lora = settings.model.model_copy(update={"lora": current.adapter, "server_url": None})
        calibrate(
            settings.model_copy(update={"model": lora}),
            seeds,
            es.population_ticks,
            strategies=("llm", *es.teachers),
            keep=population,
        )
        populations.append(population)
        seen_seeds += seeds
        seconds["population"] = round(time.monotonic() - clock, 1)

        child_dir = out / f"gen{g + 1}"
        child_dir.mkdir(parents=True, exist_ok=True)
        dataset = child_dir / "dataset.jsonl"
        rows = write_dataset(populations, seen_seeds, dataset)
        if rows == 0:
            raise ConfigError(f"gen{g}: no decision in {population} beat its tick's mean")
        say(f"gen{g + 1}: training on {rows} curated rows from seeds {seen_seeds}")
        manifest = train(
            dataset,
            child_dir / "adapter",
            model_path,
            cache_dir,
            es.train,
            parent_generation=g,
            progress=lambda step, loss: say(f"  step {step}/{es.train.steps}  loss {loss:.4f}"),
            population_seeds=seen_seeds,
        )
        seconds["train"] = manifest.seconds
        child = Contestant(f"gen{g + 1}", adapter=child_dir / "adapter" / manifest.adapter)

        clock = time.monotonic()
        say(f"gen{g + 1}: evaluating against {current.name} on held-out seeds {eval_seeds}")
        result = evaluate(
            settings,
            current,
            child,
            eval_seeds,
            es.eval_ticks,
            baselines=es.baselines,
            known=known,
            progress=lambda name, life: say(
                f"  {name} seed {life.seed}: {'alive' if life.alive else 'dead'} after "
                f"{life.ticks_lived} ticks, net worth {life.final_worth:.2f}"
            ),
        )
        known = {
            c: tuple(x for x in result.lives if x.name == c) for c in (current.name, child.name)
        }
        write_report(result, child_dir)
        seconds["evaluate"] = round(time.monotonic() - clock, 1)
        report = GenerationReport(
            generation=g + 1,
            parent=current.name,
            adapter=str(child.adapter),
            dataset_rows=rows,
            population_seeds=list(seeds),
            verdict=result.verdict,
            differences={k: dataclasses.asdict(v) for k, v in result.differences.items()},
            evaluation=str(child_dir / "evaluation.md"),
            seconds=seconds,
        )
        reports.append(report)
        (out / "evolve.json").write_text(
            json.dumps([dataclasses.asdict(r) for r in reports], indent=2) + "\n"
        )
        d = result.differences["expected_life"]
        say(
            f"gen{g + 1} vs {current.name}: {result.verdict} (expected lifetime "
            f"{d.value:+.1f} [{d.low:+.1f}, {d.high:+.1f}] ticks); report {child_dir}"
        )
        if result.verdict != "worse":
            current = child
    return reports
