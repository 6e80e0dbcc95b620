"""`forager run`: one agent, its flags laid over the settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent.config import load_settings
from telemetry.logs import configure_logging

# flag -> setting; a flag that is not given leaves the setting to the environment and defaults
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
    "new_world": ("arena", "new_world"),
    "port": ("http", "port"),
    "model": ("model", "path"),
    "keystore": ("wallet", "keystore"),
    "lora": ("model", "lora"),
    "password_file": ("wallet", "password_file"),
}


def add(commands: Any) -> None:
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
    run.add_argument(
        "--new-world",
        action="store_true",
        default=None,  # not given: FORAGER_ARENA__NEW_WORLD or the default decides
        help="deploy a new world when this data dir's saved one is missing or unreadable",
    )
    run.add_argument("--generation", type=int, help="this agent's generation (0: founders)")
    run.add_argument("--seed", type=int, help="seed for the arena's weather and the model")
    run.add_argument("--linger", type=float, help="seconds a dead agent keeps serving")
    run.add_argument("--keystore", type=Path, help="the agent's key file (Web3 Secret Storage v3)")
    run.add_argument("--password-file", type=Path, help="file holding the keystore's password")
    run.set_defaults(handler=_run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags given name, as `load_settings` keyword arguments."""
    flat: dict[str, Any] = {
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
    return flat | nested


def _run(args: argparse.Namespace) -> int:
    from agent.daemon.lifecycle import Daemon  # heavy imports only for the command that needs them

    settings = load_settings(**overrides(args))
    configure_logging(settings.telemetry.log_level)
    return Daemon(settings).run()
