"""`forager dataset export`: stored lives as training data (TRL-format JSON lines)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add(commands: Any) -> None:
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
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from agent.runtime.experience import select_lives
    from telemetry.dataset import export

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
