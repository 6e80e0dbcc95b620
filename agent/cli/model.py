"""`forager model fetch|path|serve`: the default model, and one server for a node's agents."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from agent.config import ModelWeights, default_cache_dir, load_settings
from agent.errors import ConfigError

ENGINES = ("llama-server", "forager")
WEIGHTS = get_args(ModelWeights)
DEFAULT_ENGINE = "forager"


def add(commands: Any) -> None:
    model = commands.add_parser("model", help="the default model")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    fetch = model_commands.add_parser("fetch", help="download and verify the default model")
    path = model_commands.add_parser("path", help="print the verified default model's path")
    for command in (fetch, path):
        command.add_argument("--cache-dir", type=Path, default=None)
        command.add_argument(
            "--weights",
            choices=WEIGHTS,
            default=None,
            help="its encoding, derived once from the bundled file (default: "
            "FORAGER_MODEL__WEIGHTS, else q4_1, as shipped)",
        )
    fetch.set_defaults(handler=_fetch)
    path.set_defaults(handler=_path)
    serve = model_commands.add_parser(
        "serve", help="one model for this node's agents, their decisions decoded in one batch"
    )
    serve.add_argument(
        "--engine",
        choices=ENGINES,
        default=DEFAULT_ENGINE,
        help="llama.cpp's own llama-server, supervised (restarted if it dies), or our engine "
        f"over llama-cpp-python (default: {DEFAULT_ENGINE})",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--slots", type=int, default=4, help="agents decoded together")
    serve.add_argument("--threads", type=int, help="llama.cpp threads (default: the cores)")
    serve.add_argument("--model", type=Path, help="GGUF (default: the bundled model)")
    serve.add_argument(
        "--lora",
        type=Path,
        action="append",
        default=[],
        help="a LoRA adapter (GGUF) from forager train; llama-server takes several, each "
        "applied only to the requests of the agents that name it",
    )
    serve.set_defaults(handler=_serve)


def _fetch(args: argparse.Namespace) -> int:
    from agent.model.cache import fetch_default, locate_default

    cache_dir = args.cache_dir or default_cache_dir()
    fetch_default(cache_dir)
    print(locate_default(cache_dir, weights=_weights(args)))
    return 0


def _path(args: argparse.Namespace) -> int:
    from agent.model.cache import locate_default

    print(locate_default(args.cache_dir or default_cache_dir(), weights=_weights(args)))
    return 0


def _weights(args: argparse.Namespace) -> str:
    return str(args.weights or load_settings().model.weights)


def _serve(args: argparse.Namespace) -> int:
    if args.engine == "llama-server":
        return _serve_llama_server(args)
    if len(args.lora) > 1:
        raise ConfigError("--engine forager serves one adapter (--lora once); use llama-server")
    import uvicorn

    from agent.daemon.wiring import build_engine
    from agent.model.server import serve_app

    lora = args.lora[0] if args.lora else None
    given = {"path": args.model, "lora": lora, "n_threads": args.threads}
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


def _serve_llama_server(args: argparse.Namespace) -> int:
    import signal
    import sys

    from agent.daemon.wiring import model_file
    from agent.model.llama_server import ServerSpec, SupervisedServer

    settings = load_settings()
    model = args.model or model_file(settings)
    threads = args.threads or settings.model.n_threads
    lora = args.lora or ([settings.model.lora] if settings.model.lora else [])
    spec = ServerSpec(
        model, args.port, tuple(lora), host=args.host, slots=args.slots, threads=threads,
        gpu_layers=settings.model.n_gpu_layers,
    )  # fmt: skip
    server = SupervisedServer(spec, log_to=sys.stderr.buffer)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    url = server.start()
    adapters = "".join(f" + {a.name}" for a in lora)
    print(f"model server: {url} (llama-server, {model.name}{adapters}, {args.slots} slots)",
          flush=True)  # fmt: skip
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
