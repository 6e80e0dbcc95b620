"""`forager evolve`: labels (or a population) → train → evaluate → the next generation, K times.

Generation 0 is the bundled model. By default (`objective="values"`) each generation learns
from what every answer was worth (`agent.lab.counterfactual`, `agent.lab.value_fit`):

1. **Continuation.** Generation 0's labels are valued with the best rule teacher living on after
   each candidate (a warm start). A trained generation first lives its own training seeds
   (`gen<g>/population/`, kept), a stand-in is fitted to those lives (`agent.lab.standin`, its
   agreement measured on the last life, which it was not fitted to), and the stand-in is the
   continuation: improvement can compound instead of stopping at the teacher.
2. **Labels.** The stand-in (if any) and the teachers visit generation g's seeds (g·S to
   g·S+S-1, all below the held-out range); every `label.every`-th state is valued for every
   answer → `gen<g+1>/labels.jsonl`.
3. **Train** from those values (a KL anchor to nothing but the base: each adapter is trained
   afresh on the base model).
4. **Evaluate** and **choose**, as below.

With `objective="imitation"`, the older loop:

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

**Regret on held-out states.** Once per evolution, the teachers visit the held-out seeds and
every `heldout_every`-th state is valued for every answer, as the labels are (with the teacher
living on): `heldout/labels.jsonl`, never trained on. Each generation's answer distribution is
scored there (`agent.lab.regret`): its mean regret (the best answer's value minus its expected
value), how often its most likely answer is a best one, its timing — beside the base model's,
a uniform choice's, the best answer's and the best answer per situation's (a bound for any
policy that sees only the situation) (`heldout/regret-gen0.json`, `gen<g>/regret.json`, the
report's `regret`).

**Resuming.** An evolution takes hours on a small machine; what it finished is kept. Every
held-out life goes to `lives.jsonl` as it ends (`agent.lab.book`), a generation's labels are
complete once `labels.json` (their summary) is written beside them, its adapter once its
`manifest.json` is. `resume=True` (`forager evolve --resume`) goes on from there in the same
output dir, with the same settings (`evolve-settings.json`; only `generations` may grow):
finished generations are read back from `evolve.json`, a generation's finished phases are
skipped, a phase cut short is done again from its start, and no life is lived twice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.core.lives import Life
from agent.errors import ConfigError
from agent.lab.book import LifeBook
from agent.lab.calibrate import calibrate, params_from, weather_steps_per_tick
from agent.lab.counterfactual import LabelParams, check_every, visit, write_rows
from agent.lab.evaluate import (
    BASELINES,
    EVAL_TICKS,
    HELD_OUT_FIRST_SEED,
    Contestant,
    Evaluation,
    evaluate,
)
from agent.lab.regret import SCALE, Choice, adapter_name, regret_of
from agent.lab.report import write_report
from agent.lab.standin import PREFIX, ceiling, fit, lived_decisions
from agent.lab.train import TrainSettings, train
from agent.reports.progress import Progress, Silent
from agent.runtime.experience import read_experience
from telemetry.dataset import curated_rows


@dataclass(frozen=True)
class EvolveSettings:
    generations: int
    population_seeds: int = 4
    population_ticks: int = 100
    teachers: tuple[str, ...] = ("mean_reversion", "liquidity", "random")
    eval_seeds: int = 8
    eval_first_seed: int = HELD_OUT_FIRST_SEED
    eval_ticks: int = EVAL_TICKS
    baselines: tuple[str, ...] = BASELINES
    train: TrainSettings = field(
        default_factory=lambda: TrainSettings(steps=24, batch=4, learning_rate=3e-4)
    )
    objective: str = "values"  # "values": from counterfactual labels; "imitation": curated rows
    # each child's training starts from its parent's adapter (where the parent has one: gen 0
    # is the base model), so what a generation learned is kept and built on
    from_parent: bool = False
    label: LabelParams = field(default_factory=LabelParams)


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
    continuation: str = ""  # "values": the policy the labels lived on with
    agreement: float | None = None  # "values": the stand-in's, on a life it was not fitted to
    agreement_action: float | None = None  # ... the same action, whatever the size
    agreement_ceiling: float | None = None  # the most any table of situations matches (`ceiling`)
    significant: int = 0  # "values": labelled states with a significant best answer
    regret: dict[str, Any] | None = None  # on the held-out labelled states (see `heldout_regret`)


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
            lives = [life for d in dirs if (life := read_experience(d)) is not None]
            for row in curated_rows(lives):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count


@dataclass(frozen=True)
class Evolution:
    """What stays the same from one generation to the next: settings, paths, the display."""

    settings: Settings
    es: EvolveSettings
    out: Path
    model_path: Path
    cache_dir: Path
    progress: Progress
    book: LifeBook | None = None
    resume: bool = False

    @property
    def eval_seeds(self) -> list[int]:
        first = self.es.eval_first_seed
        return list(range(first, first + self.es.eval_seeds))


@dataclass
class Lineage:
    """Where the evolution stands: the current model and what has been lived and judged."""

    current: Contestant
    populations: list[Path] = field(default_factory=list)
    seen_seeds: list[int] = field(default_factory=list)
    known: dict[str, tuple[Life, ...]] = field(default_factory=dict)  # held-out lives measured
    reports: list[GenerationReport] = field(default_factory=list)


def evolve(
    settings: Settings,
    evolve_settings: EvolveSettings,
    out: Path,
    model_path: Path,
    cache_dir: Path,
    start: Path | None = None,
    progress: Progress = Silent(),
    resume: bool = False,
) -> list[GenerationReport]:
    """Run `generations` rounds; returns (and writes to `out/evolve.json`) their reports.

    Each phase reports through `progress`: a line as it starts (`say`), its lives or training
    steps as phases of their own, and each generation's verdict. With `resume`, an evolution
    already in `out` goes on where it stopped (see the module's description)."""
    if evolve_settings.generations < 1:
        raise ConfigError(f"--generations {evolve_settings.generations} must be 1 or more")
    if evolve_settings.objective == "values":
        check_every(evolve_settings.label.every, settings.rent.period_ticks)
    out.mkdir(parents=True, exist_ok=True)
    keep_plan(out, plan(settings, evolve_settings, model_path, start), resume)
    run = Evolution(
        settings,
        evolve_settings,
        out,
        model_path,
        cache_dir,
        progress,
        book=LifeBook(out / "lives.jsonl"),
        resume=resume,
    )
    lineage = Lineage(current=Contestant("gen0", adapter=start))
    if evolve_settings.from_parent:
        parent_training(lineage.current)  # refused now, not after the first labels
    done = finished(run, lineage) if resume else 0
    if done:
        progress.say(
            f"resuming {out}: {done} generation(s) finished, current {lineage.current.name}, "
            f"{len(run.book or ())} held-out lives in the book"
        )
    heldout_labels(run)
    backfill_regret(run, lineage)
    for g in range(done, evolve_settings.generations):
        generation(run, lineage, g)
    return lineage.reports


def plan(
    settings: Settings, es: EvolveSettings, model_path: Path, start: Path | None
) -> dict[str, Any]:
    """What an evolution must keep to be resumed: everything that shapes its lives, labels
    and training (not how many generations it runs)."""
    m = settings.model
    kept: dict[str, Any] = json.loads(
        json.dumps(
            {
                "evolve": {k: v for k, v in dataclasses.asdict(es).items() if k != "generations"},
                "start": str(start) if start else None,
                "model": str(model_path),
                "sampling": {"temperature": m.temperature, "seed": m.seed, "decode": m.decode},
                "prompt": m.prompt,
                "world": settings.model_dump(mode="json", include={"arena", "rent", "policy"}),
            },
            default=str,
        )
    )
    return kept


def keep_plan(out: Path, wanted: dict[str, Any], resume: bool) -> None:
    """Write the plan of a new evolution; refuse to start one over a finished or running one
    (it would be overwritten) and to resume one with other settings."""
    path = out / "evolve-settings.json"
    if not resume:
        if (out / "evolve.json").exists() or path.exists():
            raise ConfigError(
                f"{out} already holds an evolution: --resume to go on with it, or another --out"
            )
        path.write_text(json.dumps(wanted, indent=2) + "\n")
        return
    if not path.is_file():
        raise ConfigError(f"--resume: {path} does not exist (expected an evolution begun there)")
    had = json.loads(path.read_text())
    changed = sorted(k for k in had.keys() | wanted.keys() if had.get(k) != wanted.get(k))
    if changed:
        details = "; ".join(f"{k}: was {had.get(k)}, now {wanted.get(k)}" for k in changed)
        raise ConfigError(
            f"--resume {out}: begun with other settings ({details}); resume with the same ones"
        )


def finished(run: Evolution, lineage: Lineage) -> int:
    """The generations `evolve.json` lists, replayed into `lineage`; how many."""
    path = run.out / "evolve.json"
    reports = json.loads(path.read_text()) if path.is_file() else []
    for data in reports:
        report = GenerationReport(**data)
        lineage.reports.append(report)
        lineage.seen_seeds += report.population_seeds
        if run.es.objective == "imitation":
            lineage.populations.append(run.out / f"gen{report.generation - 1}" / "population")
        if report.verdict != "worse":
            lineage.current = Contestant(f"gen{report.generation}", adapter=Path(report.adapter))
    return len(reports)


def generation(run: Evolution, lineage: Lineage, g: int) -> GenerationReport:
    """One round: what to learn from, train, evaluate, then choose the next current model."""
    child_dir = run.out / f"gen{g + 1}"
    child_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    clock = time.monotonic()
    if run.es.objective == "values":
        seeds, rows, extra = labels(run, lineage, g, child_dir)
        seconds = {"labels": round(time.monotonic() - clock, 1)}
        data = child_dir / "labels.jsonl"
    else:
        population(run, lineage, g, ("llm", *run.es.teachers))
        seeds = population_seeds(g, run.es)
        seconds = {"population": round(time.monotonic() - clock, 1)}
        rows = dataset(run, lineage, g, child_dir)
        data = child_dir / "dataset.jsonl"
    child, seconds["train"] = train_child(run, lineage, g, child_dir, data)
    clock = time.monotonic()
    result = evaluate_child(run, lineage, child, child_dir)
    seconds["evaluate"] = round(time.monotonic() - clock, 1)
    clock = time.monotonic()
    regret = heldout_regret(run, child, child_dir)
    seconds["regret"] = round(time.monotonic() - clock, 1)
    report = GenerationReport(
        generation=g + 1,
        parent=lineage.current.name,
        adapter=str(child.adapter),
        dataset_rows=rows,
        population_seeds=seeds,
        verdict=result.verdict,
        differences={k: dataclasses.asdict(v) for k, v in result.differences.items()},
        evaluation=str(child_dir / "evaluation.md"),
        seconds=seconds,
        regret=regret,
        **extra,
    )
    choose(run, lineage, child, result, report)
    return report


def heldout_every(rent_period: int) -> int:
    """The held-out labels' stride: the first from 13 up coprime with the rent period."""
    every = 13
    while math.gcd(every, rent_period) > 1:
        every += 1
    return every


def heldout_labels(run: Evolution) -> Path:
    """The held-out labelled states, made once per evolution (kept on resume)."""
    folder = run.out / "heldout"
    path, summary = folder / "labels.jsonl", folder / "labels.json"
    if summary.is_file():
        return path
    es, seeds = run.es, run.eval_seeds
    label = dataclasses.replace(es.label, every=heldout_every(run.settings.rent.period_ticks))
    run.progress.say(
        f"held-out labels: seeds {seeds}, every {label.every}th tick, visited by "
        f"{', '.join(es.teachers)}, valued with {label.continuation} living on"
    )
    params = params_from(run.settings, seeds, es.eval_ticks, _steps(run))
    states = list(visit(run.settings, params, label, list(es.teachers), run.progress))
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / "labels.jsonl.part"
    with part.open("w") as out:
        rows = write_rows(states, out)
    part.replace(path)
    significant = sum(x.significant() for x in states)
    summary.write_text(
        json.dumps({"seeds": seeds, "rows": rows, "every": label.every, "significant": significant})
        + "\n"
    )
    return path


def heldout_regret(run: Evolution, child: Contestant, child_dir: Path) -> dict[str, Any] | None:
    """The child's regret on the held-out states beside the base model's and the scale's (the
    base measured once); None where no held-out state has a significant best answer."""
    kept = child_dir / "regret.json"
    if run.resume and kept.is_file():
        figures: dict[str, Any] = json.loads(kept.read_text())
        return figures
    labels = heldout_labels(run)
    if not json.loads((labels.parent / "labels.json").read_text())["significant"]:
        run.progress.say(f"{child.name}: no held-out state has a significant best answer")
        return None
    assert child.adapter is not None  # a trained generation
    base_file = labels.parent / "regret-gen0.json"
    base = json.loads(base_file.read_text()) if base_file.is_file() else None
    choices = regret_of(labels, run.model_path, [child.adapter.parent], run.progress, base is None)
    named = {c.name: dataclasses.asdict(c) for c in choices}
    if base is None:
        base = {k: named[k] for k in ("base", *SCALE)}
        base_file.write_text(json.dumps(base, indent=2) + "\n")
    # the scale from this measure (cheap, and newer than a kept base's), the base from the file
    figures = {
        "child": named[adapter_name(child.adapter.parent)],
        "base": base["base"],
        **{k: named[k] for k in SCALE},
    }
    c, b, u, s = (Choice(**figures[k]) for k in ("child", "base", SCALE[0], SCALE[2]))
    line = (
        f"Regret on {c.states} held-out states (ticks of expected life, best answer's value "
        f"minus the expected): {child.name} {c.regret:.2f}, base {b.regret:.2f}, uniform "
        f"{u.regret:.2f}, the best answer per situation {s.regret:.2f} (a bound for what sees "
        f"only the situation); its most likely answer is a best one on "
        f"{c.argmax_best}/{c.states}."
    )
    # The report's line first and once, the figures last: a crash between them is answered on
    # resume by measuring again, which finds the line already written.
    report = child_dir / "evaluation.md"
    if line not in (report.read_text() if report.is_file() else ""):
        with report.open("a") as out:
            out.write(line + "\n")
    kept.write_text(json.dumps(figures, indent=2) + "\n")
    run.progress.say(f"{child.name}: {line}")
    return figures


def backfill_regret(run: Evolution, lineage: Lineage) -> None:
    """Generations finished before held-out regret was measured get it now (on resume)."""
    missing = [r for r in lineage.reports if r.regret is None and r.adapter]
    for report in missing:
        adapter = Path(report.adapter)
        child_dir = run.out / f"gen{report.generation}"
        child = Contestant(f"gen{report.generation}", adapter=adapter)
        report.regret = heldout_regret(run, child, child_dir)
    if missing:
        (run.out / "evolve.json").write_text(
            json.dumps([dataclasses.asdict(r) for r in lineage.reports], indent=2) + "\n"
        )


def labels(
    run: Evolution, lineage: Lineage, g: int, child_dir: Path
) -> tuple[list[int], int, dict[str, Any]]:
    """1-2. The continuation (the teacher, or the current generation's stand-in) and the
    labels of generation g's seeds; the seeds, the rows, and what the report adds."""
    es, seeds = run.es, population_seeds(g, run.es)
    summary = child_dir / "labels.json"
    if run.resume and summary.is_file():
        kept = json.loads(summary.read_text())
        run.progress.say(f"gen{g + 1}: labels kept from before ({kept['rows']} states)")
        lineage.seen_seeds += seeds
        return seeds, kept["rows"], kept["extra"]
    continuation, visitors = es.label.continuation, list(es.teachers)
    fidelity: dict[str, float | None] = {"agreement": None}
    if lineage.current.adapter is not None:
        continuation, fidelity = standin(run, lineage, g)
        visitors = [continuation, *visitors]
    run.progress.say(
        f"gen{g + 1}: labels on seeds {seeds}, visited by {', '.join(visitors)}, valued with "
        f"{continuation} living on"
    )
    params = params_from(run.settings, seeds, es.population_ticks, _steps(run))
    label = dataclasses.replace(es.label, continuation=continuation)
    states = list(visit(run.settings, params, label, visitors, run.progress))
    part = child_dir / "labels.jsonl.part"
    with part.open("w") as out:
        rows = write_rows(states, out)
    part.replace(child_dir / "labels.jsonl")
    significant = sum(x.significant() for x in states)
    if not significant:
        raise ConfigError(f"gen{g + 1}: no labelled state has a significant best answer")
    lineage.seen_seeds += seeds
    extra = {"continuation": continuation, **fidelity, "significant": significant}
    summary.write_text(json.dumps({"seeds": seeds, "rows": rows, "extra": extra}) + "\n")
    return seeds, rows, extra


def _steps(run: Evolution) -> int:
    return weather_steps_per_tick(run.settings)


def standin(run: Evolution, lineage: Lineage, g: int) -> tuple[str, dict[str, float | None]]:
    """The current generation lives generation g's seeds (kept); a stand-in is fitted to all
    but the last life and its agreement measured on the last (with one life: fitted to it, no
    agreement measured); its name as a policy, and how well it stands in (the report's
    `agreement`, `agreement_action`, `agreement_ceiling`)."""
    where = population(run, lineage, g, ("llm",))
    pairs = lived_decisions(list(where.glob("llm-seed*")))
    fitted = pairs[:-1] if len(pairs) > 1 else pairs
    flat = [p for ps in fitted for p in ps]
    table = fit(lineage.current.name, flat)
    path = run.out / f"gen{g}" / "standin.json"
    table.save(path)
    held = pairs[-1] if len(pairs) > 1 else None
    fidelity = {
        "agreement": round(table.agreement(held), 4) if held else None,
        "agreement_action": round(table.agreement(held, action_only=True), 4) if held else None,
        "agreement_ceiling": round(ceiling(flat), 4),
    }
    run.progress.say(
        f"gen{g}: stand-in of {lineage.current.name}, {len(table.table)} situations; agreement "
        + (
            f"on a life it was not fitted to {fidelity['agreement']:.1%} (the same action "
            f"{fidelity['agreement_action']:.1%})"
            if held
            else "not measured (one life)"
        )
        + f"; a table of situations matches at most {fidelity['agreement_ceiling']:.1%} of "
        "the decisions it is fitted to"
    )
    return f"{PREFIX}{path}", fidelity


def population(run: Evolution, lineage: Lineage, g: int, strategies: tuple[str, ...]) -> Path:
    """The current model (`llm`) and any teachers live generation g's seeds, stores kept."""
    es, seeds = run.es, population_seeds(g, run.es)
    where = run.out / f"gen{g}" / "population"
    if where.exists():  # a population cut short before: its stores would be lived on again
        shutil.rmtree(where)
    run.progress.say(
        f"gen{g}: population of {lineage.current.name}"
        + "".join(f", {s}" for s in strategies if s != "llm")
        + f" on seeds {seeds}"
    )
    lora = run.settings.model.model_copy(
        update={"lora": lineage.current.adapter, "server_url": None}
    )
    calibrate(
        run.settings.model_copy(update={"model": lora}),
        seeds,
        es.population_ticks,
        strategies=strategies,
        keep=where,
        progress=run.progress,
    )
    if strategies != ("llm",):  # imitation learns from every population so far
        lineage.populations.append(where)
        lineage.seen_seeds += seeds
    return where


def dataset(run: Evolution, lineage: Lineage, g: int, child_dir: Path) -> int:
    """2. Curated rows of every population so far, judged seed by seed; how many."""
    rows = write_dataset(lineage.populations, lineage.seen_seeds, child_dir / "dataset.jsonl")
    if rows == 0:
        raise ConfigError(f"gen{g}: no decision in {lineage.populations[-1]} beat its tick's mean")
    seen = lineage.seen_seeds
    run.progress.say(f"gen{g + 1}: training on {rows} curated rows from seeds {seen}")
    return rows


def train_child(
    run: Evolution, lineage: Lineage, g: int, child_dir: Path, data: Path
) -> tuple[Contestant, float]:
    """3. The child's adapter on the base model (from its parent's adapter with `from_parent`);
    the child and the seconds it took."""
    folder = child_dir / "adapter"
    kept = folder / "manifest.json"
    if run.resume and kept.is_file():
        made = json.loads(kept.read_text())
        run.progress.say(f"gen{g + 1}: adapter kept from before ({folder / made['adapter']})")
        return Contestant(f"gen{g + 1}", adapter=folder / made["adapter"]), made["seconds"]
    if folder.exists():  # training cut short before
        shutil.rmtree(folder)
    objective = "values" if run.es.objective == "values" else "sft"
    start = parent_training(lineage.current) if run.es.from_parent else None
    manifest = train(
        data,
        child_dir / "adapter",
        run.model_path,
        run.cache_dir,
        dataclasses.replace(run.es.train, objective=objective, init_from=start),
        parent_generation=g,
        progress=run.progress,
        population_seeds=lineage.seen_seeds,
    )
    child = Contestant(f"gen{g + 1}", adapter=child_dir / "adapter" / manifest.adapter)
    return child, manifest.seconds


def parent_training(parent: Contestant) -> str | None:
    """The `forager train --out` folder of the parent's adapter (its peft/ beside the GGUF), or
    None for a parent without an adapter (the base model)."""
    if parent.adapter is None:
        return None
    folder = parent.adapter.parent
    if not (folder / "peft").is_dir():
        raise ConfigError(
            f"{parent.name}'s adapter {parent.adapter} has no peft/ folder beside it, so a child "
            "cannot start from it (expected a forager train --out; or leave out --from-parent)"
        )
    return str(folder)


def evaluate_child(
    run: Evolution, lineage: Lineage, child: Contestant, child_dir: Path
) -> Evaluation:
    """4. Parent and child (and baselines) on the held-out seeds; the report in `child_dir`."""
    parent, seeds = lineage.current, run.eval_seeds
    run.progress.say(f"{child.name}: evaluating against {parent.name} on held-out seeds {seeds}")
    result = evaluate(
        run.settings,
        parent,
        child,
        seeds,
        run.es.eval_ticks,
        baselines=run.es.baselines,
        known=lineage.known,
        progress=run.progress,
        book=run.book,
    )
    lineage.known = {
        c: tuple(x for x in result.lives if x.name == c) for c in (parent.name, child.name)
    }
    write_report(result, child_dir)
    return result


def choose(
    run: Evolution,
    lineage: Lineage,
    child: Contestant,
    result: Evaluation,
    report: GenerationReport,
) -> None:
    """5. Record the generation; the child becomes current unless it was measured worse."""
    lineage.reports.append(report)
    (run.out / "evolve.json").write_text(
        json.dumps([dataclasses.asdict(r) for r in lineage.reports], indent=2) + "\n"
    )
    d = result.differences["expected_life"]
    run.progress.say(
        f"{child.name} vs {lineage.current.name}: {result.verdict} (expected lifetime "
        f"{d.value:+.1f} [{d.low:+.1f}, {d.high:+.1f}] ticks); report {run.out / child.name}"
    )
    if result.verdict != "worse":
        lineage.current = child
