"""The `forager` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent.config import Settings, default_cache_dir, load_settings
from agent.errors import AgentError, ConfigError
from akash.errors import AkashError, SdlError
from telemetry.dataset import DatasetError
from telemetry.logs import configure_logging
from telemetry.redaction import secrets
from wallets.errors import WalletError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forager", description="Run agents that must pay rent.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    _add_wallet(commands)
    _add_dataset(commands)
    _add_telemetry(commands)
    _add_akash(commands)
    _add_population(commands)
    _add_fleet(commands)
    _add_train(commands)
    _add_generations(commands)
    _add_model(commands)
    _add_logs(commands)
    status = commands.add_parser("status", help="an agent's state at a glance")
    status.add_argument("url", nargs="?", default="http://127.0.0.1:8080")
    return parser


def _add_logs(commands: Any) -> None:
    logs = commands.add_parser("logs", help="pretty-print an agent's JSON log lines")
    logs.add_argument("file", nargs="?", default="-", help="a log file, or - for stdin")
    logs.add_argument("--follow", "-f", action="store_true", help="keep reading as it grows")
    logs.add_argument("--event", help="only this event, e.g. swap_submitted")
    logs.add_argument(
        "--level", choices=["debug", "info", "warning", "error"], help="this level and above"
    )


def _add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="run one agent (on a local arena unless a chain is set)")
    run.add_argument("--ticks", type=int, help="stop cleanly after N ticks")
    run.add_argument("--interval", type=float, help="seconds between ticks")
    run.add_argument("--port", type=int, help="HTTP port (0 picks a free one)")
    run.add_argument("--data-dir", type=Path, help="where state, keystore and journal live")
    run.add_argument("--model", type=Path, help="a GGUF file (default: bundled SmolLM2-135M)")
    run.add_argument("--lora", type=Path, help="a LoRA adapter (GGUF) from forager train")
    run.add_argument(
        "--strategy",
        help="llm (default) or a rule: hold, momentum, mean_reversion, random, liquidity",
    )
    run.add_argument(
        "--persona", help="the model's temperament: cautious, momentum, contrarian, frugal"
    )
    run.add_argument("--arena", type=Path, help="join a shared arena (forager arena up --out)")
    run.add_argument("--generation", type=int, help="this agent's generation (0: founders)")
    run.add_argument("--seed", type=int, help="seed for the arena's weather and the model")
    run.add_argument("--linger", type=float, help="seconds a dead agent keeps serving")
    run.add_argument("--keystore", type=Path, help="the agent's key file (Web3 Secret Storage v3)")
    run.add_argument("--password-file", type=Path, help="file holding the keystore's password")


def _add_wallet(commands: Any) -> None:
    wallet = commands.add_parser("wallet", help="create, import or inspect a keystore")
    wallet_commands = wallet.add_subparsers(dest="wallet_command", required=True)
    for name, text in (
        ("new", "create a keystore with a fresh key; print its address"),
        ("address", "decrypt a keystore; print its address"),
        ("import", "encrypt a private key read from stdin into a new keystore"),
    ):
        sub = wallet_commands.add_parser(name, help=text)
        sub.add_argument("--keystore", type=Path, required=True)
        sub.add_argument("--password-file", type=Path, required=True)


def _add_dataset(commands: Any) -> None:
    dataset = commands.add_parser("dataset", help="turn stored lives into training data")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)
    export = dataset_commands.add_parser("export", help="write TRL-format JSON lines")
    export.add_argument("--data-dir", type=Path, action="append", required=True, dest="data_dirs")
    export.add_argument("--format", required=True, choices=["sft", "kto", "dpo", "trajectories"])
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--gamma", type=float, default=0.9, help="discount of future rewards")
    export.add_argument("--top-k", type=int, help="keep the k longest (then richest) lives")
    export.add_argument("--min-return", type=float, help="keep lives with at least this return")
    export.add_argument("--generation", type=int, help="keep lives of this generation")
    export.add_argument("--strategy", help="keep lives of this strategy (e.g. llm)")


def _add_telemetry(commands: Any) -> None:
    telemetry = commands.add_parser("telemetry", help="telemetry tools")
    telemetry_commands = telemetry.add_subparsers(dest="telemetry_command", required=True)
    replay = telemetry_commands.add_parser(
        "replay", help="re-send stored tick records to the OTLP collector (OTEL_* settings)"
    )
    replay.add_argument("--data-dir", type=Path, required=True)
    replay.add_argument("--since", type=int, default=0, help="first tick to send")


def _add_akash(commands: Any) -> None:
    akash = commands.add_parser("akash", help="deploy to the Akash decentralized cloud")
    akash_commands = akash.add_subparsers(dest="akash_command", required=True)
    sdl = akash_commands.add_parser("sdl", help="render the SDL for this agent")
    sdl.add_argument("--image", default="openforager/agent:latest")
    sdl.add_argument("--cpu", type=float, default=1.0)
    sdl.add_argument("--memory", default="2Gi")
    sdl.add_argument("--storage", default="4Gi")
    sdl.add_argument("--persistent", action="store_true", help="keep the data dir on a volume")
    sdl.add_argument("--gpu", help="NVIDIA model, e.g. h100, a100, rtx4090")
    sdl.add_argument("--gpu-ram", help="GPU memory, e.g. 80Gi")
    sdl.add_argument("--price", type=int, default=1_000, help="max per block (uact or uakt)")
    sdl.add_argument("--denom", choices=["uact", "uakt"], default="uact")
    sdl.add_argument("--env", action="append", default=[], help="KEY=VALUE for the container")
    sdl.add_argument("--out", type=Path, help="write here instead of stdout")
    check = akash_commands.add_parser("validate", help="validate any SDL file")
    check.add_argument("file", type=Path)
    check.add_argument("--schema", type=Path, help="sdl-input.schema.yaml (default: found)")
    steps = akash_commands.add_parser("commands", help="print the self-custody CLI sequence")
    steps.add_argument("--sdl", default="deploy.yaml", help="the SDL file the commands use")
    go = akash_commands.add_parser("deploy", help="create a deployment and lease via the Console")
    go.add_argument("--sdl", type=Path, required=True)
    go.add_argument("--gpu", help="only accept bids offering this GPU model")
    go.add_argument("--max-price", type=Decimal, help="highest acceptable price per block")
    go.add_argument("--bid-timeout", type=float, default=180.0, help="seconds to wait for bids")
    go.add_argument("--keep-dir", type=Path, default=Path("akash-deployments"))
    for name, text in (
        ("status", "a deployment's state and its lease URIs"),
        ("close", "close a deployment (its remaining deposit returns)"),
    ):
        one = akash_commands.add_parser(name, help=text)
        one.add_argument("dseq")
    logs = akash_commands.add_parser("logs", help="stream a lease's logs from its provider")
    logs.add_argument("dseq")
    logs.add_argument("--follow", "-f", action="store_true", help="keep streaming new lines")
    logs.add_argument("--tail", type=int, default=100, help="lines from the end to start with")
    logs.add_argument("--service", help="one service of the SDL (default: all)")
    logs.add_argument("--event", help="only this event, e.g. swap_submitted")
    logs.add_argument(
        "--level", choices=["debug", "info", "warning", "error"], help="this level and above"
    )
    topup = akash_commands.add_parser("topup", help="add funds to a deployment's escrow")
    topup.add_argument("dseq")
    topup.add_argument("--usd", type=float, required=True)


def _add_train(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="a LoRA adapter for the model from exported lives (the train extra)"
    )
    train.add_argument("--dataset", type=Path, required=True, help="SFT rows (dataset export)")
    train.add_argument("--out", type=Path, required=True, help="adapter.gguf, manifest.json, ...")
    train.add_argument("--model", type=Path, help="the base GGUF (default: the bundled model)")
    train.add_argument("--steps", type=int, default=60)
    train.add_argument("--batch", type=int, default=8)
    train.add_argument("--learning-rate", type=float, default=2e-4)
    train.add_argument("--rank", type=int, default=8)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--parent-generation", type=int, default=0)


def _train(args: argparse.Namespace) -> int:
    from agent.lab.train import TrainSettings, train
    from agent.model.cache import locate_default

    if min(args.steps, args.batch, args.rank) < 1 or args.learning_rate <= 0:
        raise ConfigError(
            f"--steps {args.steps}, --batch {args.batch} and --rank {args.rank} must be 1 or "
            f"more and --learning-rate {args.learning_rate} above 0"
        )
    cache_dir = default_cache_dir()
    model = args.model or locate_default(cache_dir)
    settings = TrainSettings(
        steps=args.steps,
        batch=args.batch,
        learning_rate=args.learning_rate,
        rank=args.rank,
        alpha=2 * args.rank,
        seed=args.seed,
    )

    def progress(step: int, loss: float) -> None:
        print(f"step {step}/{args.steps}  loss {loss:.4f}", file=sys.stderr, flush=True)

    manifest = train(
        args.dataset, args.out, model, cache_dir, settings, args.parent_generation, progress
    )
    print(
        f"adapter {args.out / manifest.adapter} (sha256 {manifest.adapter_sha256[:16]}), "
        f"generation {manifest.generation}, {manifest.rows} rows, {len(manifest.losses)} steps "
        f"on {manifest.device} in {manifest.seconds:.0f} s; loss {manifest.losses[0]:.4f} -> "
        f"{manifest.losses[-1]:.4f}"
    )
    return 0


def _add_generations(commands: Any) -> None:
    ev = commands.add_parser(
        "evaluate", help="generation N vs N+1 (and baselines) on held-out seeds, with a verdict"
    )
    ev.add_argument("--parent", required=True, help="the parent's adapter, or 'none' (gen 0)")
    ev.add_argument("--child", type=Path, required=True, help="the child's adapter (GGUF)")
    ev.add_argument("--parent-name", default="parent")
    ev.add_argument("--child-name", default="child")
    ev.add_argument("--seeds", type=int, default=4, help="how many held-out seeds")
    ev.add_argument("--first-seed", type=int, default=1000, help="first held-out seed")
    ev.add_argument("--ticks", type=int, default=100, help="ticks each life lasts at most")
    ev.add_argument("--baselines", default="hold", help="comma-separated rule strategies")
    ev.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    ev.add_argument("--out", type=Path, default=Path("evaluation"), help="JSON, Markdown, PNG")
    evo = commands.add_parser(
        "evolve", help="population -> dataset -> train -> evaluate, generation after generation"
    )
    evo.add_argument("--generations", type=int, required=True)
    evo.add_argument("--out", type=Path, default=Path("evolution"), help="one dir per generation")
    evo.add_argument("--start", type=Path, help="an adapter to start from (default: gen 0)")
    evo.add_argument("--population-seeds", type=int, default=4, help="new seeds per generation")
    evo.add_argument("--ticks", type=int, default=100, help="ticks of each population life")
    evo.add_argument(
        "--teachers", default="mean_reversion,liquidity,random", help="rule lives beside the model"
    )
    evo.add_argument("--eval-seeds", type=int, default=4)
    evo.add_argument("--eval-ticks", type=int, default=100)
    evo.add_argument("--baselines", default="hold", help="comma-separated rule strategies")
    evo.add_argument("--steps", type=int, default=24, help="training steps per generation")
    evo.add_argument("--batch", type=int, default=4)
    evo.add_argument("--learning-rate", type=float, default=3e-4)


def _evaluate(args: argparse.Namespace) -> int:
    from agent.lab.evaluate import Contestant, evaluate, render_table, write_report

    if args.seeds < 1 or args.ticks < 1 or args.resamples < 100:
        raise ConfigError(
            f"--seeds {args.seeds} and --ticks {args.ticks} must be 1 or more and --resamples "
            f"{args.resamples} at least 100"
        )
    parent = None if args.parent == "none" else Path(args.parent)
    for name, path in (("--parent", parent), ("--child", args.child)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{name} {path} is not a file (expected a GGUF LoRA adapter)")
    settings = load_settings()
    configure_logging("error")
    seeds = range(args.first_seed, args.first_seed + args.seeds)

    def progress(name: str, life: Any) -> None:
        print(
            f"{name} seed {life.seed}: {'alive' if life.alive else 'dead'} after "
            f"{life.ticks_lived} ticks, net worth {life.final_worth:.2f}",
            file=sys.stderr,
            flush=True,
        )

    result = evaluate(
        settings,
        Contestant(args.parent_name, adapter=parent),
        Contestant(args.child_name, adapter=args.child),
        seeds,
        args.ticks,
        baselines=[b for b in args.baselines.split(",") if b],
        resamples=args.resamples,
        progress=progress,
    )
    paths = write_report(result, args.out)
    print(render_table(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _evolve(args: argparse.Namespace) -> int:
    from agent.lab.evolve import EvolveSettings, evolve
    from agent.lab.train import TrainSettings
    from agent.model.cache import locate_default

    if min(args.population_seeds, args.ticks, args.eval_seeds, args.eval_ticks) < 1:
        raise ConfigError("--population-seeds, --ticks, --eval-seeds and --eval-ticks must be 1+")
    if args.start is not None and not args.start.is_file():
        raise ConfigError(f"--start {args.start} is not a file (expected a GGUF LoRA adapter)")
    settings = load_settings()
    configure_logging("error")
    cache_dir = default_cache_dir()
    es = EvolveSettings(
        generations=args.generations,
        population_seeds=args.population_seeds,
        population_ticks=args.ticks,
        teachers=tuple(t for t in args.teachers.split(",") if t),
        eval_seeds=args.eval_seeds,
        eval_ticks=args.eval_ticks,
        baselines=tuple(b for b in args.baselines.split(",") if b),
        train=TrainSettings(steps=args.steps, batch=args.batch, learning_rate=args.learning_rate),
    )
    reports = evolve(
        settings,
        es,
        args.out,
        settings.model.path or locate_default(cache_dir),
        cache_dir,
        start=args.start,
        say=lambda line: print(line, flush=True),
    )
    print(
        f"{len(reports)} generations: "
        + ", ".join(f"gen{r.generation} {r.verdict}" for r in reports)
    )
    return 0


def _add_population(commands: Any) -> None:
    arena = commands.add_parser("arena", help="a shared local arena for many agents")
    arena_commands = arena.add_subparsers(dest="arena_command", required=True)
    up = arena_commands.add_parser("up", help="start an arena and write its connection file")
    up.add_argument("--out", type=Path, required=True, help="the connection file (JSON)")
    up.add_argument("--seed", type=int, help="weather seed: same seed, same price path")
    up.add_argument("--port", type=int, help="anvil's loopback port (default: a free one)")
    up.add_argument("--state-dir", type=Path, help="keep the world here across restarts")
    up.add_argument("--weather-interval", type=float, help="seconds between weather trades")
    up.add_argument("--replay", type=Path, help="replay a CSV price series instead")
    _add_weather_flags(up)
    calibrate = arena_commands.add_parser(
        "calibrate", help="run the rule-based baselines on many seeds: does skill pay?"
    )
    calibrate.add_argument("--seeds", type=int, default=10, help="how many seeds (arenas)")
    calibrate.add_argument("--first-seed", type=int, help="default: FORAGER_ARENA__SEED")
    calibrate.add_argument("--ticks", type=int, default=500, help="ticks each life lasts at most")
    calibrate.add_argument(
        "--steps-per-tick",
        type=int,
        help="weather steps between two ticks (default: FORAGER_INTERVAL_S / weather interval)",
    )
    calibrate.add_argument(
        "--strategies",
        help="comma-separated baselines (default: all of them); llm adds the model (slow)",
    )
    calibrate.add_argument(
        "--out", type=Path, default=Path("calibration"), help="JSON, Markdown and PNG go here"
    )
    calibrate.add_argument(
        "--keep", type=Path, help="also keep every life's store here (for `dataset export`)"
    )
    _add_weather_flags(calibrate)


_WEATHER_FLAGS = {
    "drift": "per-step drift of the fair value's log price",
    "volatility": "per-step volatility of the fair value's log price",
    "regime_switch": "chance per step of calm <-> storm",
    "shock_prob": "chance per step of a fair-value jump",
    "shock_size": "a jump's size in log price",
    "noise": "noise traders' push per step (log price)",
    "arb_strength": "share of the gap to fair value the arbitrageur closes per step",
}


def _add_weather_flags(parser: argparse.ArgumentParser) -> None:
    for name, text in _WEATHER_FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float, help=text)


def _weather_overrides(args: argparse.Namespace) -> dict[str, float]:
    return {n: getattr(args, n) for n in _WEATHER_FLAGS if getattr(args, n) is not None}


def _add_fleet(commands: Any) -> None:
    fleet = commands.add_parser("fleet", help="populations of agents on one arena")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", required=True)
    run = fleet_commands.add_parser("run", help="launch, supervise and stop N agents")
    run.add_argument("--agents", type=int, required=True)
    run.add_argument("--strategies", required=True, help="comma-separated, assigned in turn")
    run.add_argument("--ticks", type=int, required=True, help="ticks each agent lives at most")
    run.add_argument("--dir", type=Path, default=Path("fleet"), help="one data dir per agent")
    run.add_argument("--interval", type=float, default=2.0)
    run.add_argument("--seed", type=int)
    run.add_argument("--generation", type=int, default=0)
    run.add_argument("--stagger", type=float, default=1.0, help="seconds between starts")
    run.add_argument(
        "--model-server",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="model agents share one `forager model serve` (default: what bench.density measured "
        "faster on this kind of node)",
    )
    go = fleet_commands.add_parser("deploy", help="one Akash deployment per agent")
    go.add_argument("--agents", type=int, required=True)
    go.add_argument("--strategies", required=True, help="comma-separated, assigned in turn")
    go.add_argument("--dir", type=Path, default=Path("fleet-akash"), help="records and manifests")
    go.add_argument("--image", default="openforager/agent:latest")
    go.add_argument("--cpu", type=float, default=1.0)
    go.add_argument("--memory", default="2Gi")
    go.add_argument("--storage", default="4Gi")
    go.add_argument("--price", type=int, default=1_000, help="max per block (uact)")
    go.add_argument("--generation", type=int, default=0)
    go.add_argument("--max-price", type=Decimal, help="highest acceptable bid per block")
    go.add_argument("--bid-timeout", type=float, default=180.0, help="seconds to wait for bids")
    go.add_argument(
        "--keys", action="store_true", help="make each agent's wallet here and ship it (secret env)"
    )
    watch = fleet_commands.add_parser("supervise", help="deploy the children deployed agents fund")
    watch.add_argument("--deployments", type=Path, required=True)
    watch.add_argument("--image", default="openforager/agent:latest")
    watch.add_argument("--price", type=int, default=1_000, help="max per block (uact)")
    watch.add_argument("--poll", type=float, default=60.0, help="seconds between passes")
    watch.add_argument("--once", action="store_true", help="one pass, then exit")
    board = fleet_commands.add_parser("leaderboard", help="rank the lives of a population")
    board.add_argument("dir", type=Path, nargs="?", help="a local fleet dir (one per agent)")
    board.add_argument(
        "--deployments", type=Path, help="deployments.json of `fleet deploy`: ask each agent"
    )
    board.add_argument("--json", type=Path, help="also write the ranking as JSON here")
    board.add_argument("--chart", type=Path, help="PNG of net worth (default: DIR/networth.png)")


def _arena(args: argparse.Namespace) -> int:
    import threading

    from agent.daemon.wiring import arena_config
    from agent.populations.fleet import serve_arena, stop_on_signals

    if args.arena_command == "calibrate":
        return _calibrate(args)
    settings = load_settings()
    configure_logging(settings.telemetry.log_level)
    config = arena_config(
        settings,
        seed=args.seed,
        port=args.port,
        state_dir=args.state_dir,
        weather_interval_s=args.weather_interval,
        replay_csv=args.replay,
        **_weather_overrides(args),
    )
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        serve_arena(config, args.out, stop)
    finally:
        restore()
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from agent.lab.calibrate import BASELINES, calibrate, render_table, write_report

    if args.seeds < 1 or args.ticks < 1:
        raise ConfigError(f"--seeds {args.seeds} and --ticks {args.ticks} must both be 1 or more")
    settings = load_settings()
    configure_logging("error")  # thousands of ticks: the report is the output
    arena = settings.arena.model_dump() | _weather_overrides(args)
    try:
        settings = settings.model_copy(update={"arena": type(settings.arena)(**arena)})
    except ValueError as exc:
        raise ConfigError(f"weather flags: {exc}") from None
    strategies = tuple(args.strategies.split(",")) if args.strategies else BASELINES
    first = settings.arena.seed if args.first_seed is None else args.first_seed
    seeds = range(first, first + args.seeds)
    try:
        report = calibrate(
            settings, seeds, args.ticks, args.steps_per_tick, strategies, keep=args.keep
        )
    except ValueError as exc:
        raise ConfigError(f"--strategies: {exc}") from None
    paths = write_report(report, args.out)
    p = report.params
    print(
        f"{len(seeds)} seeds ({first}..{first + len(seeds) - 1}) x {p.ticks} ticks, "
        f"{p.steps_per_tick} weather steps per tick; weather {p.weather}; flow {p.flow}"
    )
    print(render_table(report))
    print(json.dumps(report.verdict()))
    print("wrote " + ", ".join(str(x) for x in paths))
    return 0


def _fleet(args: argparse.Namespace) -> int:
    import json
    import threading

    from agent.populations import fleet

    if args.fleet_command == "leaderboard":
        if (args.dir is None) == (args.deployments is None):
            raise ConfigError("fleet leaderboard: give a fleet DIR or --deployments FILE")
        if args.deployments is not None:
            lives = fleet.remote_leaderboard(args.deployments)
            default_chart = args.deployments.parent / "networth.png"
        else:
            lives = fleet.leaderboard(args.dir)
            default_chart = args.dir / "networth.png"
        print(fleet.render_table(lives))
        chart = fleet.write_chart(lives, args.chart or default_chart)
        print(f"chart: {chart}")
        if args.json:
            args.json.write_text(json.dumps([life.row() for life in lives], indent=2))
            print(f"json: {args.json}")
        return 0
    settings = load_settings()
    configure_logging(settings.telemetry.log_level)
    if args.fleet_command == "supervise":
        return _fleet_supervise(args, settings)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for name in strategies:
        load_settings(strategy=name)  # a bad name stops here, named
    if args.fleet_command == "deploy":
        return _fleet_deploy(args, settings, strategies)
    stop = threading.Event()
    restore = fleet.stop_on_signals(stop)
    try:
        members = fleet.run_fleet(
            args.dir,
            agents=args.agents,
            strategies=strategies,
            ticks=args.ticks,
            settings=settings,
            interval_s=args.interval,
            seed=args.seed,
            generation=args.generation,
            stagger_s=args.stagger,
            stop=stop,
            model_server=fleet.DEFAULT_MODEL_SERVER
            if args.model_server is None
            else args.model_server,
        )
    finally:
        restore()
    failed = [m.name for m in members if m.exit_code not in (0, None)]
    print(f"fleet: {len(members)} agents in {args.dir}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def _fleet_deploy(args: argparse.Namespace, settings: Settings, strategies: list[str]) -> int:
    from agent.populations import fleet
    from akash.console import ConsoleClient
    from akash.sdl import SdlOptions

    key = settings.akash.api_key.get_secret_value() if settings.akash.api_key else ""
    secrets.register(key)
    client = ConsoleClient(key, base_url=settings.akash.console_url)
    options = SdlOptions(
        image=args.image, cpu=args.cpu, memory=args.memory, storage=args.storage, price=args.price
    )
    done = fleet.deploy_fleet(
        client,
        args.dir,
        agents=args.agents,
        strategies=strategies,
        options=options,
        base_env=settings_env(settings),
        generation=args.generation,
        bid_timeout_s=args.bid_timeout,
        max_price=args.max_price,
        with_keys=args.keys,
    )
    for entry in done:
        where = entry.get("state_url") or entry.get("error")
        print(f"{entry['name']} {entry['strategy']}: dseq {entry.get('dseq', '-')} {where}")
    print(f"recorded in {args.dir / 'deployments.json'}")
    return 0 if all("dseq" in entry for entry in done) else 1


def _fleet_supervise(args: argparse.Namespace, settings: Settings) -> int:
    import threading

    from agent.populations import fleet
    from akash.console import ConsoleClient
    from akash.sdl import SdlOptions

    key = settings.akash.api_key.get_secret_value() if settings.akash.api_key else ""
    secrets.register(key)
    client = ConsoleClient(key, base_url=settings.akash.console_url)
    options = SdlOptions(image=args.image, price=args.price)
    stop = threading.Event()
    restore = fleet.stop_on_signals(stop)
    try:
        while True:
            for entry in fleet.supervise_remote(
                client, args.deployments, options, settings_env(settings)
            ):
                where = entry.get("state_url") or entry.get("error")
                print(f"{entry['name']} (child of {entry['parent']}): {where}")
            if args.once or stop.wait(args.poll):
                return 0
    finally:
        restore()


def _add_model(commands: Any) -> None:
    model = commands.add_parser("model", help="the default model")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    fetch = model_commands.add_parser("fetch", help="download and verify the default model")
    fetch.add_argument("--cache-dir", type=Path, default=None)
    path = model_commands.add_parser("path", help="print the verified default model's path")
    path.add_argument("--cache-dir", type=Path, default=None)
    serve = model_commands.add_parser(
        "serve", help="one model for this node's agents, their decisions decoded in one batch"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--slots", type=int, default=4, help="agents decoded together")
    serve.add_argument("--threads", type=int, help="llama.cpp threads (default: the cores)")
    serve.add_argument("--model", type=Path, help="GGUF (default: the bundled model)")
    serve.add_argument("--lora", type=Path, help="a LoRA adapter (GGUF) from forager train")


_FLAT_FLAGS = {
    "ticks": "ticks",
    "interval": "interval_s",
    "strategy": "strategy",
    "generation": "generation",
    "persona": "persona",
    "data_dir": "data_dir",
    "linger": "linger_s",
}
_NESTED_FLAGS = {
    "arena": ("arena", "file"),
    "port": ("http", "port"),
    "model": ("model", "path"),
    "keystore": ("wallet", "keystore"),
    "lora": ("model", "lora"),
    "password_file": ("wallet", "password_file"),
}


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        name: getattr(args, flag)
        for flag, name in _FLAT_FLAGS.items()
        if getattr(args, flag) is not None
    }
    nested: dict[str, dict[str, Any]] = {}
    for flag, (group, name) in _NESTED_FLAGS.items():
        if getattr(args, flag) is not None:
            nested.setdefault(group, {})[name] = getattr(args, flag)
    if args.seed is not None:
        nested.setdefault("model", {})["seed"] = args.seed
        nested.setdefault("arena", {})["seed"] = args.seed
    return overrides | nested


def _run(args: argparse.Namespace) -> int:
    from agent.daemon.lifecycle import Daemon  # heavy imports only for the command that needs them

    settings = load_settings(**_run_overrides(args))
    configure_logging(settings.telemetry.log_level)
    return Daemon(settings).run()


def _model(args: argparse.Namespace) -> int:
    from agent.model.cache import fetch_default, locate_default

    if args.model_command == "serve":
        return _serve_model(args)
    cache_dir = args.cache_dir or default_cache_dir()
    found = fetch_default(cache_dir) if args.model_command == "fetch" else locate_default(cache_dir)
    print(found)
    return 0


def _serve_model(args: argparse.Namespace) -> int:
    import uvicorn

    from agent.daemon.wiring import build_engine
    from agent.model.server import serve_app

    given = {"path": args.model, "lora": args.lora, "n_threads": args.threads}
    settings = load_settings(model={k: v for k, v in given.items() if v is not None})
    engine = build_engine(settings, slots=args.slots)
    print(
        f"model server: http://{args.host}:{args.port} ({engine.name}"
        f"{' + ' + engine.adapter if engine.adapter else ''}, {args.slots} slots)",
        flush=True,
    )
    try:
        uvicorn.run(serve_app(engine), host=args.host, port=args.port, log_level="warning")
    finally:
        engine.close()
    return 0


def _wallet(args: argparse.Namespace) -> int:
    from wallets import keystore

    password = keystore.read_password(args.password_file)
    if args.wallet_command == "new":
        account = keystore.create_keystore(args.keystore, password)
    elif args.wallet_command == "import":
        account = keystore.import_key(args.keystore, sys.stdin.readline(), password)
    else:
        account = keystore.load_keystore(args.keystore, password)
    print(account.address)
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from telemetry.dataset import export, select_lives

    lives = select_lives(
        args.data_dirs,
        gamma=args.gamma,
        top_k=args.top_k,
        min_return=args.min_return,
        generation=args.generation,
        strategy=args.strategy,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")
    with partial.open("w") as out:
        rows = export(lives, args.format, out)
    partial.replace(args.out)  # a reader never sees half a file
    print(f"{rows} {args.format} rows -> {args.out}")
    return 0


def _telemetry(args: argparse.Namespace) -> int:
    from agent.runtime.replay import replay

    sent = replay(args.data_dir, args.since)
    print(f"{sent} tick records re-sent")
    return 0


def _akash(args: argparse.Namespace) -> int:
    from akash import sdl as render
    from akash.validate import load_schema, load_yaml, validate_document

    if args.akash_command == "commands":
        print("\n".join(render.cli_commands(args.sdl)))
        return 0
    if args.akash_command in ("deploy", "status", "close", "topup", "logs"):
        return _console(args)
    if args.akash_command == "validate":
        try:
            text = args.file.read_text()
        except OSError as exc:
            raise SdlError(f"SDL file {args.file} cannot be read: {exc.strerror}") from exc
        problems = validate_document(load_yaml(text, str(args.file)), load_schema(args.schema))
        for problem in problems:
            print(f"{args.file}: {problem}")
        print(f"{args.file}: {'valid' if not problems else f'{len(problems)} problem(s)'}")
        return 0 if not problems else 1
    options = render.SdlOptions(
        image=args.image,
        cpu=args.cpu,
        memory=args.memory,
        storage=args.storage,
        persistent=args.persistent,
        gpu=args.gpu,
        gpu_ram=args.gpu_ram,
        price=args.price,
        denom=args.denom,
        env=dict(_pair(item) for item in args.env),
    )
    text = render.render_sdl(options, settings_env(load_settings()))
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")
    return 0


def _console(args: argparse.Namespace) -> int:
    from akash.console import ConsoleClient
    from akash.deploy import deploy

    settings = load_settings().akash
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    secrets.register(key)
    client = ConsoleClient(key, base_url=settings.console_url)
    if args.akash_command == "logs":
        return _lease_logs(client, args)
    if args.akash_command == "deploy":
        sdl = args.sdl.read_text()
        done = deploy(
            client,
            sdl,
            args.keep_dir,
            gpu=args.gpu,
            max_price=args.max_price,
            bid_timeout_s=args.bid_timeout,
        )
        print(f"dseq {done.dseq} leased from {done.provider} at {done.price} {done.denom}/block")
        print(f"manifest kept in {done.manifest_file}")
        print(f"state: {done.state_url or '(no URI yet: forager akash status ' + done.dseq + ')'}")
        return 0
    if args.akash_command == "close":
        print(f"dseq {args.dseq} closed: {client.close(args.dseq)}")
        return 0
    status = (
        client.deposit(args.dseq, args.usd)
        if args.akash_command == "topup"
        else client.deployment(args.dseq)
    )
    print(f"dseq {status.dseq}: {status.state}")
    for lease in status.leases:
        print(f"  lease {lease.provider}: {lease.state} {' '.join(lease.uris)}")
    return 0


def _lease_logs(client: Any, args: argparse.Namespace) -> int:
    """The Console finds the lease and its provider and mints a JWT; the provider streams."""
    from agent.cli.logview import show
    from akash import leaselogs

    status = client.deployment(args.dseq)
    lease = next((item for item in status.leases if item.state == "active"), None)
    if lease is None:
        raise AkashError(f"dseq {args.dseq} has no active lease (state: {status.state})")
    url = leaselogs.logs_url(
        client.provider_host(lease.provider),
        status.dseq,
        lease.gseq,
        lease.oseq,
        follow=args.follow,
        tail=args.tail,
        service=args.service,
    )
    lines = (line.message for line in leaselogs.stream(url, client.lease_token(("logs",))))
    try:
        show(lines, sys.stdout, event=args.event, level=args.level, colour=sys.stdout.isatty())
    except KeyboardInterrupt:
        return 0
    return 0


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--env {item!r}: expected KEY=VALUE")
    return key, value


def settings_env(settings: Settings) -> dict[str, str]:
    """The agent's non-secret settings as container environment variables."""
    env = {
        "FORAGER_INTERVAL_S": str(settings.interval_s),
        "FORAGER_GENERATION": str(settings.generation),
        "FORAGER_STRATEGY": settings.strategy,
        **({"FORAGER_PERSONA": settings.persona} if settings.persona else {}),
        "FORAGER_RENT__AMOUNT": str(settings.rent.amount),
        "FORAGER_RENT__PERIOD_TICKS": str(settings.rent.period_ticks),
        "FORAGER_RENT__GRACE_TICKS": str(settings.rent.grace_ticks),
    }
    chain = settings.chain
    if chain.rpc_url:
        env["FORAGER_CHAIN__RPC_URL"] = chain.rpc_url
        for name in ("chain_id", "stable_token", "risk_token", "pool", "router", "landlord"):
            env[f"FORAGER_CHAIN__{name.upper()}"] = str(getattr(chain, name))
    return env


def _status(args: argparse.Namespace) -> int:
    from agent.cli.statusview import fetch, render

    state, health = fetch(args.url)
    print(render(state, health))
    return 0 if health.get("ok") else 1


def _logs(args: argparse.Namespace) -> int:
    from agent.cli.logview import follow, show

    colour = sys.stdout.isatty()
    if args.file == "-":
        show(sys.stdin, sys.stdout, event=args.event, level=args.level, colour=colour)
        return 0
    try:
        handle = Path(args.file).open()  # noqa: SIM115 -- closed below; may be followed forever
    except OSError as exc:
        raise ConfigError(f"log file {args.file} cannot be read: {exc.strerror}") from exc
    with handle:
        lines = follow(handle) if args.follow else handle
        try:
            show(lines, sys.stdout, event=args.event, level=args.level, colour=colour)
        except KeyboardInterrupt:
            return 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "run": _run,
        "model": _model,
        "wallet": _wallet,
        "dataset": _dataset,
        "telemetry": _telemetry,
        "akash": _akash,
        "arena": _arena,
        "fleet": _fleet,
        "logs": _logs,
        "status": _status,
        "train": _train,
        "evaluate": _evaluate,
        "evolve": _evolve,
    }
    try:
        return commands[args.command](args)
    except (AgentError, WalletError, DatasetError, AkashError) as exc:
        print(f"forager: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
