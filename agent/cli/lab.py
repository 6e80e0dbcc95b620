"""`forager label|train|regret|standin|evaluate|evolve`: the lab, from lives and
counterfactual labels to a measured next generation."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import default_cache_dir, load_settings
from agent.errors import ConfigError
from telemetry.logs import configure_logging

if TYPE_CHECKING:
    from agent.core.decider import Decider
    from agent.lab.evolve import EvolveSettings
    from agent.lab.standin import StandIn
    from agent.lab.train import TrainSettings


def add(commands: Any) -> None:
    _add_label(commands)
    _add_train(commands)
    _add_regret(commands)
    _add_standin(commands)
    _add_evaluate(commands)
    _add_evolve(commands)


def _add_label(commands: Any) -> None:
    label = commands.add_parser(
        "label", help="what every answer was worth at visited states (counterfactual labels)"
    )
    label.add_argument("--out", type=Path, required=True, help="JSON lines, one row per state")
    label.add_argument("--seeds", type=int, default=4, help="how many training seeds")
    label.add_argument("--first-seed", type=int, default=0, help="the first training seed")
    label.add_argument("--ticks", type=int, default=100, help="ticks each visiting life lasts")
    label.add_argument(
        "--every", type=int, default=7, help="label every n-th tick (coprime with the rent period)"
    )
    label.add_argument("--horizon", type=int, default=40, help="ticks each candidate lives on")
    label.add_argument("--futures", type=int, default=8, help="weather paths per state")
    label.add_argument(
        "--continuation",
        default="mean_reversion",
        help="the policy after the candidate: a rule (default: the best rule teacher) or "
        "standin:PATH, a generation's stand-in (forager standin)",
    )
    label.add_argument(
        "--visitors",
        default="mean_reversion,random",
        help="whose lives visit: rule strategies or standin:PATH",
    )
    label.add_argument(
        "--significant-only", action="store_true", help="drop states with no clear best answer"
    )
    label.add_argument(
        "--prompt",
        choices=("plain", "compact", "advice"),
        default="plain",
        help="the system prompt the rows carry (default: plain, no trading advice)",
    )
    label.add_argument(
        "--workers",
        type=int,
        help="visiting lives lived at once, each in its own process (default: one per core)",
    )
    label.set_defaults(handler=_label)


def _label(args: argparse.Namespace) -> int:
    from agent.lab.calibrate import params_from, weather_steps_per_tick
    from agent.lab.counterfactual import LabelParams, check_every, visit, write_rows
    from agent.lab.standin import check_policy
    from agent.reports.progress import progress_for

    counts = (args.seeds, args.ticks, args.every, args.horizon, args.futures, args.workers or 1)
    if min(counts) < 1:
        raise ConfigError(
            "--seeds, --ticks, --every, --horizon, --futures and --workers must be 1 or more "
            f"(got {counts[:5]}, --workers {args.workers})"
        )
    visitors = _names(args.visitors)
    for name in (*visitors, args.continuation):
        check_policy(name)
    settings = load_settings()
    check_every(args.every, settings.rent.period_ticks)
    configure_logging("error")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    params = params_from(settings, seeds, args.ticks, weather_steps_per_tick(settings))
    label = LabelParams(args.horizon, args.futures, args.every, args.continuation, args.prompt)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with progress_for() as progress:
        labels = list(visit(settings, params, label, visitors, progress, args.workers))
    with args.out.open("w") as out:
        rows = write_rows(labels, out, significant_only=args.significant_only)
    clear = sum(x.significant() for x in labels)
    print(f"{rows} states -> {args.out} ({clear} of {len(labels)} with a significant best answer)")
    return 0


def _add_train(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="a LoRA adapter for the model from exported lives (the train extra)"
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="SFT rows (dataset export): imitate them")
    source.add_argument(
        "--labels", type=Path, help="counterfactual values (forager label): fit the answers to them"
    )
    train.add_argument(
        "--tau", type=float, default=2.0, help="with --labels: ticks of value per factor of e"
    )
    train.add_argument(
        "--anchor",
        type=float,
        default=0.0,
        help="with --labels: the share of each target that is the parent's own answers (KL anchor)",
    )
    train.add_argument(
        "--anchor-to",
        type=Path,
        help="with --anchor: the parent's forager train --out folder (default: the base model)",
    )
    train.add_argument(
        "--frozen-observation",
        action="store_true",
        help="with --labels: no gradient through the observation (only the answer learns)",
    )
    train.add_argument(
        "--pool-situations",
        action="store_true",
        help="with --labels: each answer valued at its mean over the states in the same situation",
    )
    train.add_argument(
        "--init-from",
        type=Path,
        help="a forager train --out whose adapter to start from (default: a fresh adapter)",
    )
    train.add_argument("--out", type=Path, required=True, help="adapter.gguf, manifest.json, ...")
    train.add_argument("--model", type=Path, help="the base GGUF (default: the bundled model)")
    train.add_argument("--steps", type=int, default=60)
    train.add_argument("--batch", type=int, default=8)
    train.add_argument("--learning-rate", type=float, default=2e-4)
    train.add_argument("--rank", type=int, default=8)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--parent-generation", type=int, default=0)
    train.set_defaults(handler=_train)


def _add_regret(commands: Any) -> None:
    regret = commands.add_parser(
        "regret", help="what the model's answers are worth on labelled states (held-out labels)"
    )
    regret.add_argument("--labels", type=Path, required=True, help="forager label output")
    regret.add_argument(
        "--adapter",
        type=Path,
        action="append",
        default=[],
        help="a forager train --out folder (repeat for several); the base model is always shown",
    )
    regret.add_argument("--model", type=Path, help="the base GGUF (default: the bundled model)")
    regret.add_argument("--json", type=Path, help="also write the figures here")
    regret.set_defaults(handler=_regret)


def _regret(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from agent.lab.regret import regret_of, regret_table
    from agent.model.cache import locate_default
    from agent.reports.progress import progress_for
    from agent.reports.tables import show

    model = args.model or locate_default(default_cache_dir())
    with progress_for() as progress:
        choices = regret_of(args.labels, model, args.adapter, progress)
    show(regret_table(choices))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(c) for c in choices], indent=2))
    return 0


def _add_standin(commands: Any) -> None:
    standin = commands.add_parser(
        "standin", help="a generation's answers as a table of what it saw (a cheap continuation)"
    )
    source = standin.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--lives",
        type=Path,
        nargs="+",
        help="the generation's kept lives (agent data dirs: arena calibrate --keep)",
    )
    source.add_argument(
        "--labels", type=Path, help="forager label output: a table of each state's best answer"
    )
    standin.add_argument("--name", required=True, help="whose answers these are (gen1, ...)")
    standin.add_argument("--out", type=Path, required=True, help="the stand-in (JSON)")
    standin.add_argument(
        "--check-share",
        type=float,
        default=0.25,
        help="the share of lives (or labelled states) kept out of the fit to measure agreement",
    )
    standin.add_argument(
        "--try",
        dest="try_seeds",
        type=int,
        default=0,
        help="then live the table on this many held-out seeds (from 1000, 300 ticks) beside "
        "mean_reversion and hold",
    )
    standin.set_defaults(handler=_standin)


def _standin(args: argparse.Namespace) -> int:
    from agent.lab.standin import ceiling, fit, labelled_decisions, lived_decisions

    groups = lived_decisions(args.lives) if args.lives else labelled_decisions(args.labels)
    checked = round(len(groups) * args.check_share)
    if not 0 <= args.check_share < 1 or (args.check_share and not 0 < checked < len(groups)):
        raise ConfigError(
            f"--check-share {args.check_share} of {len(groups)} lives or states must keep at "
            "least one out of the fit and one in it (or be 0)"
        )
    fitted = [p for ps in groups[: len(groups) - checked] for p in ps]
    held = [p for ps in groups[len(groups) - checked :] for p in ps]
    standin = fit(args.name, fitted)
    standin.save(args.out)
    what = "lives" if args.lives else "labelled states"
    print(
        f"stand-in for {args.name}: {len(standin.table)} situations from {standin.fitted_on} "
        f"decisions of {len(groups) - checked} {what} -> {args.out}"
    )
    if held:
        constant = fit("constant", [(s, standin.default) for s, _ in fitted])
        print(
            f"agreement with {args.name} on {len(held)} decisions of {checked} other {what}: "
            f"{standin.agreement(held):.1%} (its most frequent answer alone, "
            f"{standin.default}: {constant.agreement(held):.1%}); the same action "
            f"{standin.agreement(held, action_only=True):.1%}"
        )
    print(
        f"a table of situations matches at most {ceiling(fitted):.1%} of the decisions it is "
        "fitted to (where one situation gets several answers, no stand-in matches them all)"
    )
    if args.try_seeds:
        _try_standin(standin, args.try_seeds)
    return 0


def _try_standin(standin: StandIn, seeds: int) -> None:
    """The table's lives on held-out seeds, beside the best rule teacher's and hold's."""
    from agent.core.strategies import RuleDecider
    from agent.lab.calibrate import live, params_from, weather_steps_per_tick
    from agent.lab.evaluate import EVAL_TICKS, HELD_OUT_FIRST_SEED
    from agent.lab.standin import StandInDecider
    from agent.lab.stats import mean_interval

    settings = load_settings()
    configure_logging("error")
    first = HELD_OUT_FIRST_SEED
    params = params_from(
        settings, range(first, first + seeds), EVAL_TICKS, weather_steps_per_tick(settings)
    )
    deciders: dict[str, Callable[[int], Decider]] = {
        standin.name: lambda seed: StandInDecider(standin),
        "mean_reversion": lambda seed: RuleDecider("mean_reversion", seed=seed),
        "hold": lambda seed: RuleDecider("hold", seed=seed),
    }
    for name, make in deciders.items():
        lives = [live(settings, params, "llm", s, make(s), name=name) for s in params.seeds]
        life = [x.expected_life for x in lives]
        low, high = mean_interval(life)
        print(
            f"{name} on seeds {first}..{first + seeds - 1}, {EVAL_TICKS} ticks: alive "
            f"{sum(x.alive for x in lives)}/{seeds}, expected life {sum(life) / seeds:.1f} "
            f"({low:.1f} to {high:.1f})"
        )


def _add_evaluate(commands: Any) -> None:
    ev = commands.add_parser(
        "evaluate", help="generation N vs N+1 (and baselines) on held-out seeds, with a verdict"
    )
    ev.add_argument(
        "--parent",
        required=True,
        help="the parent's adapter, 'none' (generation 0), or a rule strategy (e.g. "
        "mean_reversion: the child judged against the rule as against a parent)",
    )
    ev.add_argument("--child", type=Path, required=True, help="the child's adapter (GGUF)")
    ev.add_argument("--parent-name", default="parent")
    ev.add_argument("--child-name", default="child")
    for who in ("parent", "child"):
        ev.add_argument(
            f"--{who}-prompt",
            choices=("advice", "plain", "compact"),
            help=f"the {who}'s system prompt (default: its adapter's, else FORAGER_MODEL__PROMPT)",
        )
    ev.add_argument("--seeds", type=int, default=8, help="how many held-out seeds")
    ev.add_argument("--first-seed", type=int, default=1000, help="first held-out seed")
    ev.add_argument("--ticks", type=int, default=300, help="ticks each life lasts at most")
    ev.add_argument(
        "--baselines", default="hold,mean_reversion", help="comma-separated rule strategies"
    )
    ev.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    ev.add_argument(
        "--no-controls",
        action="store_true",
        help="skip the timing controls (the child's answers shuffled in time, constant answers)",
    )
    ev.add_argument("--out", type=Path, default=Path("evaluation"), help="JSON, Markdown, PNG")
    ev.set_defaults(handler=_evaluate)


# What `evolve` does unless told otherwise, by objective: labels want whole lives and the two
# teachers whose lives differ most; imitation, the teachers' shorter populations.
_EVOLVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "values": {
        "ticks": 300,
        "teachers": "mean_reversion,random",
        "steps": 30,
        "batch": 8,
        "learning_rate": 1e-3,
    },
    "imitation": {
        "ticks": 100,
        "teachers": "mean_reversion,liquidity,random",
        "steps": 24,
        "batch": 4,
        "learning_rate": 3e-4,
    },
}


def _add_evolve(commands: Any) -> None:
    evo = commands.add_parser(
        "evolve", help="labels -> train -> evaluate, generation after generation"
    )
    evo.add_argument("--generations", type=int, required=True)
    evo.add_argument("--out", type=Path, default=Path("evolution"), help="one dir per generation")
    evo.add_argument("--start", type=Path, help="an adapter to start from (default: gen 0)")
    evo.add_argument(
        "--objective",
        choices=tuple(_EVOLVE_DEFAULTS),
        default="values",
        help="values: from counterfactual labels (default); imitation: from curated lives",
    )
    evo.add_argument("--population-seeds", type=int, default=4, help="new seeds per generation")
    evo.add_argument("--ticks", type=int, help="ticks of each training life (values: 300)")
    evo.add_argument(
        "--teachers", help="rule lives beside the model (values: mean_reversion,random)"
    )
    evo.add_argument("--every", type=int, default=7, help="values: label every n-th tick")
    evo.add_argument("--horizon", type=int, default=40, help="values: ticks each answer lives on")
    evo.add_argument("--futures", type=int, default=8, help="values: weather paths per state")
    evo.add_argument("--tau", type=float, default=2.0, help="values: ticks per factor of e")
    evo.add_argument("--eval-seeds", type=int, default=8)
    evo.add_argument("--eval-ticks", type=int, default=300)
    evo.add_argument(
        "--baselines", default="hold,mean_reversion", help="comma-separated rule strategies"
    )
    evo.add_argument("--steps", type=int, help="training steps per generation (values: 30)")
    evo.add_argument("--batch", type=int, help="values: 8")
    evo.add_argument("--learning-rate", type=float, help="values: 1e-3")
    evo.add_argument(
        "--from-parent",
        action="store_true",
        help="each child's training starts from its parent's adapter (default: a fresh one)",
    )
    evo.add_argument(
        "--pool-situations",
        action="store_true",
        help="values: each answer valued at its mean over the states in the same situation",
    )
    evo.add_argument(
        "--prompt",
        choices=("plain", "compact"),
        default="plain",
        help="the prompt the labels carry and the trained generations live with (compact: "
        "about 25 new tokens a tick instead of about 190, so lives take a fraction of the time)",
    )
    evo.add_argument(
        "--resume",
        action="store_true",
        help="go on with the evolution in --out where it stopped (same settings; "
        "--generations may grow): nothing finished is done again",
    )
    evo.set_defaults(handler=_evolve)


def _names(flag: str) -> tuple[str, ...]:
    return tuple(name for name in flag.split(",") if name)


def _adapter(flag: str, path: Path | None) -> None:
    if path is not None and not path.is_file():
        raise ConfigError(f"{flag} {path} is not a file (expected a GGUF LoRA adapter)")


def _train(args: argparse.Namespace) -> int:
    from agent.lab.train import train
    from agent.model.cache import locate_default
    from agent.reports.progress import progress_for

    settings = _train_settings(args)
    cache_dir = default_cache_dir()
    model = args.model or locate_default(cache_dir)
    with progress_for() as progress:
        manifest = train(
            args.labels or args.dataset,
            args.out,
            model,
            cache_dir,
            settings,
            args.parent_generation,
            progress,
        )
    print(
        f"adapter {args.out / manifest.adapter} (sha256 {manifest.adapter_sha256[:16]}), "
        f"generation {manifest.generation}, {manifest.rows} {'states' if args.labels else 'rows'}, "
        f"{len(manifest.losses)} steps "
        f"on {manifest.device} in {manifest.seconds:.0f} s; loss {manifest.losses[0]:.4f} -> "
        f"{manifest.losses[-1]:.4f}"
    )
    return 0


def _train_settings(args: argparse.Namespace) -> TrainSettings:
    from agent.lab.train import TrainSettings

    if min(args.steps, args.batch, args.rank) < 1 or min(args.learning_rate, args.tau) <= 0:
        raise ConfigError(
            f"--steps {args.steps}, --batch {args.batch} and --rank {args.rank} must be 1 or "
            f"more, --learning-rate {args.learning_rate} and --tau {args.tau} above 0"
        )
    if not 0 <= args.anchor < 1:
        raise ConfigError(f"--anchor {args.anchor} must be at least 0 and below 1")
    if (args.anchor or args.anchor_to or args.pool_situations) and not args.labels:
        raise ConfigError(
            "--anchor, --anchor-to and --pool-situations train from values: they need --labels"
        )
    if args.init_from and not (args.init_from / "peft").is_dir():
        raise ConfigError(
            f"--init-from {args.init_from} has no peft/ folder (expected a forager train --out)"
        )
    if args.anchor_to and not (args.anchor_to / "peft").is_dir():
        raise ConfigError(
            f"--anchor-to {args.anchor_to} has no peft/ folder (expected a forager train --out)"
        )
    return TrainSettings(
        steps=args.steps,
        batch=args.batch,
        learning_rate=args.learning_rate,
        rank=args.rank,
        alpha=2 * args.rank,
        seed=args.seed,
        objective="values" if args.labels else "sft",
        tau=args.tau,
        anchor=args.anchor,
        anchor_to=str(args.anchor_to) if args.anchor_to else None,
        read_observation=not args.frozen_observation,
        init_from=str(args.init_from) if args.init_from else None,
        pool=args.pool_situations,
    )


def _evaluate(args: argparse.Namespace) -> int:
    from agent.core.strategies import RULE_STRATEGIES
    from agent.lab.evaluate import Contestant, evaluate
    from agent.lab.report import write_report
    from agent.model.adapter import adapter_prompt
    from agent.reports.progress import progress_for
    from agent.reports.tables import show

    parent = _check_evaluate(args)
    settings = load_settings()
    configure_logging("error")
    baselines = list(_names(args.baselines))
    if args.parent in RULE_STRATEGIES:  # a rule as the parent: not also among the baselines
        elder = Contestant(args.parent, args.parent)
        baselines = [b for b in baselines if b != args.parent]
    else:
        prompt = args.parent_prompt or adapter_prompt(parent)
        elder = Contestant(args.parent_name, adapter=parent, prompt=prompt)
    with progress_for() as progress:
        result = evaluate(
            settings,
            elder,
            Contestant(
                args.child_name,
                adapter=args.child,
                prompt=args.child_prompt or adapter_prompt(args.child),
            ),
            range(args.first_seed, args.first_seed + args.seeds),
            args.ticks,
            baselines=baselines,
            resamples=args.resamples,
            progress=progress,
            controls=not args.no_controls,
        )
    paths = write_report(result, args.out)
    show(result.table())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _check_evaluate(args: argparse.Namespace) -> Path | None:
    """Refuse bad counts and missing adapters before anything loads; the parent's adapter."""
    from agent.core.strategies import RULE_STRATEGIES

    if args.seeds < 1 or args.ticks < 1 or args.resamples < 100:
        raise ConfigError(
            f"--seeds {args.seeds} and --ticks {args.ticks} must be 1 or more and --resamples "
            f"{args.resamples} at least 100"
        )
    if args.parent in RULE_STRATEGIES:
        parent = None
    else:
        parent = None if args.parent == "none" else Path(args.parent)
        _adapter("--parent", parent)
    _adapter("--child", args.child)
    return parent


def _evolve(args: argparse.Namespace) -> int:
    from agent.lab.evolve import evolve
    from agent.model.cache import locate_default
    from agent.reports.progress import progress_for

    es = _evolve_settings(args)
    settings = load_settings()
    configure_logging("error")
    cache_dir = default_cache_dir()
    model = settings.model.path or locate_default(cache_dir)
    # evolve's lines go to stdout, as its report has always been read there
    with progress_for(sys.stdout) as progress:
        reports = evolve(
            settings,
            es,
            args.out,
            model,
            cache_dir,
            start=args.start,
            progress=progress,
            resume=args.resume,
        )
    print(
        f"{len(reports)} generations: "
        + ", ".join(f"gen{r.generation} {r.verdict}" for r in reports)
    )
    return 0


def _evolve_settings(args: argparse.Namespace) -> EvolveSettings:
    from agent.lab.counterfactual import LabelParams
    from agent.lab.evolve import EvolveSettings
    from agent.lab.standin import check_policy
    from agent.lab.train import TrainSettings

    for name, value in _EVOLVE_DEFAULTS[args.objective].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    counts = [args.population_seeds, args.ticks, args.eval_seeds, args.eval_ticks, args.steps]
    counts += [args.batch, args.every, args.horizon, args.futures]
    if min(counts) < 1 or min(args.learning_rate, args.tau) <= 0:
        raise ConfigError(
            "--population-seeds, --ticks, --eval-seeds, --eval-ticks, --steps, --batch, --every, "
            "--horizon and --futures must be 1 or more, --learning-rate and --tau above 0"
        )
    if args.pool_situations and args.objective != "values":
        raise ConfigError("--pool-situations pools labelled values: it needs --objective values")
    teachers = _names(args.teachers)
    for name in teachers:
        check_policy(name)
    _adapter("--start", args.start)
    if args.from_parent and args.start and not (args.start.parent / "peft").is_dir():
        raise ConfigError(
            f"--start {args.start} has no peft/ folder beside it, so --from-parent cannot train "
            "from it (expected the adapter.gguf of a forager train --out)"
        )
    return EvolveSettings(
        generations=args.generations,
        population_seeds=args.population_seeds,
        population_ticks=args.ticks,
        teachers=teachers,
        eval_seeds=args.eval_seeds,
        eval_ticks=args.eval_ticks,
        baselines=_names(args.baselines),
        train=TrainSettings(
            steps=args.steps,
            batch=args.batch,
            learning_rate=args.learning_rate,
            tau=args.tau,
            pool=args.pool_situations,
        ),
        objective=args.objective,
        from_parent=args.from_parent,
        label=LabelParams(
            horizon=args.horizon, futures=args.futures, every=args.every, prompt=args.prompt
        ),
    )
