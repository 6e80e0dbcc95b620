"""The decide stage against llama.cpp itself, measured side by side in one process.

For each configuration (threads x GPU layers) one `LlamaDecider` is loaded and driven over the
same series of observations two ways, alternating tick by tick so both meet the same KV-cache
state and machine noise:

- `runtime`: `LlamaDecider.decide` (prompt building, constrained generation, parsing,
  validation, GenAI span attributes);
- `raw`: `Llama.create_chat_completion` called directly with the same messages, grammar,
  sampling settings and `max_tokens`.

Under the plain prompt the runtime runs each way it can decide (`decode`): generating under the
grammar, as `raw` does (the ratio is then the runtime's overhead), and choosing among the
answers by their likelihoods (the ratio is then what that saves against generating).

It prints the median and p90 latency of each, their ratio (the runtime's overhead), the share
of prompt tokens reused from the KV cache on steady ticks (llama.cpp's perf counters), and
llama.cpp's own prompt-processing and generation rates on a long prompt from an empty cache.
Each configuration runs under each prompt (`--prompts`): the advice prompt is answered with a
reason, the plain one with only what acts; the ratio of their medians is printed.

Each of the bundled model's encodings in `--weights` (q4_1 as shipped, q8_0 re-encoded) runs
every configuration in turn. `--trades` is the share of ticks whose wallet changes: 1.0 (every
tick, ~50 new tokens under the compact prompt) or ~0.3 (a real life's ~24).

    python -m bench.decision [--model GGUF] [--ticks N] [--threads 1,2] [--n-gpu-layers 0,-1]
                             [--prompts advice,plain] [--weights q4_1,q8_0] [--trades 0.3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from agent.core.prompt import PROMPTS, answer_schema, build_messages, system_prompt
from agent.core.records import Balances, Observation, RentStatus
from agent.model.deciders import LlamaDecider
from bench.results import record


def observations(
    count: int, seed: int = 0, trades: float = 1.0
) -> list[tuple[Observation, tuple[float, ...]]]:
    """A deterministic random walk of market and wallet, one observation per tick; the wallet
    changes on a `trades` share of the ticks."""
    rng = random.Random(seed)  # noqa: S311 -- a reproducible market, not a secret
    price, stable, risk = 2.0, 480_000_000, 10 * 10**18
    prices: list[float] = []
    out = []
    for tick in range(count):
        price = max(0.05, price * (1 + rng.gauss(0, 0.03)))
        if trades >= 1.0 or rng.random() < trades:
            stable = max(0, stable + rng.randint(-20, 20) * 10**6)
            risk = max(0, risk + rng.randint(-2, 2) * 10**18)
        obs = Observation(
            tick=tick,
            block=100 + tick,
            timestamp=1_700_000_000 + 12 * tick,
            balances=Balances(native=2 * 10**18, stable=stable, risk=risk),
            reserve_stable=int(100_000 * 10**6 * price / 2),
            reserve_risk=50_000 * 10**18,
            price=price,
            gas_price=10**9,
            rent=RentStatus(amount=5_000_000, period_ticks=10, age=tick, paid_periods=tick // 10),
            stable_decimals=6,
            risk_decimals=18,
            recent=tuple(f"tick {t}: hold held" for t in range(max(0, tick - 3), tick)),
        )
        out.append((obs, tuple(prices[-8:])))
        prices.append(price)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raw_decide(decider: LlamaDecider, obs: Observation, recent: tuple[float, ...]) -> float:
    """llama.cpp alone: the same request the runtime makes, timed around the call only."""
    messages = build_messages(obs, decider.system_prompt, recent, decider.style)
    started = time.perf_counter()
    decider._llm.create_chat_completion(
        messages=messages,
        response_format={"type": "json_object", "schema": decider.schema},
        temperature=decider.temperature,
        max_tokens=decider.max_tokens,
        seed=decider.seed + obs.tick,
    )
    return time.perf_counter() - started


def llama_rates(decider: LlamaDecider) -> dict[str, float]:
    """Prompt processing and generation rates by llama.cpp's own counters, from an empty cache."""
    import llama_cpp

    llm = decider._llm
    llm.reset()
    llm._ctx.kv_cache_clear()
    eos = llm.token_eos()
    prompt = "The market opened quietly. " * 60  # ~360 tokens
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    llm.create_completion(prompt, max_tokens=128, temperature=0.0, logit_bias={eos: -1e9})
    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    llm.reset()
    return {
        "prompt_tokens": perf.n_p_eval,
        "prompt_tok_s": perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms else 0.0,
        "gen_tokens": perf.n_eval,
        "gen_tok_s": perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms else 0.0,
    }


def run_config(
    model: Path,
    threads: int,
    gpu_layers: int,
    ticks: int,
    style: str = "advice",
    decode: str = "grammar",
    trades: float = 1.0,
) -> dict[str, Any]:
    started = time.perf_counter()
    decider = LlamaDecider(
        model,
        n_threads=threads,
        n_gpu_layers=gpu_layers,
        system_prompt=system_prompt(style=style),
        schema=answer_schema(style),
        decode=decode,
        style=style,
    )
    load_s = time.perf_counter() - started
    series = observations(2 * ticks + 4, trades=trades)
    for obs, recent in series[:2]:  # warm-up: the first call builds the grammar and fills the cache
        decider.decide(obs, recent)
    runtime, raw, reuse, tokens, new, ratio = [], [], [], [], [], []
    for i, (obs, recent) in enumerate(series[2:]):
        if (i + i // 2) % 2 == 0:  # runtime, raw, raw, runtime, ...: both see both positions
            decision = decider.decide(obs, recent)
            runtime.append(decision.latency_s)
            reuse.append(decision.cached_tokens / max(1, decision.prompt_tokens))
            tokens.append(decision.completion_tokens)
            if i % 4 == 0:  # the previous prompt in the cache was this decider's own
                new.append(decision.new_tokens)
                evaluated = decision.prompt_tokens - decision.cached_tokens
                ratio.append(evaluated / max(1, decision.new_tokens))
        else:
            raw.append(raw_decide(decider, obs, recent))
    rates = llama_rates(decider)
    decider.close()
    med_runtime, med_raw = statistics.median(runtime), statistics.median(raw)
    return {
        "model": model.name,
        "prompt": style,
        "decode": decider.decode,
        "threads": threads,
        "n_gpu_layers": gpu_layers,
        "load_s": round(load_s, 3),
        "decisions": len(runtime) + len(raw),
        "runtime_median_s": round(med_runtime, 4),
        "runtime_p90_s": round(pct(runtime, 0.9), 4),
        "raw_median_s": round(med_raw, 4),
        "raw_p90_s": round(pct(raw, 0.9), 4),
        "overhead_ratio": round(med_runtime / med_raw, 4),
        "prefix_reuse_median": round(statistics.median(reuse), 4),
        "new_tokens_median": statistics.median(new) if new else None,
        "evaluated_per_new_median": round(statistics.median(ratio), 3) if ratio else None,
        "completion_tokens_median": statistics.median(tokens),
        **{k: round(v, 1) for k, v in rates.items()},
    }


def default_model(weights: str | None = None) -> Path:
    """The bundled model in `weights` (derived once if need be)."""
    from agent.config import default_cache_dir
    from agent.model.cache import locate_default

    return locate_default(default_cache_dir(), weights=weights)


def ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        message = f"expected integers separated by commas, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the bundled model)")
    parser.add_argument("--ticks", type=int, default=12, help="decisions per mode and config")
    parser.add_argument("--threads", type=ints, default=None, help="e.g. 1,2 (default: cores)")
    parser.add_argument("--n-gpu-layers", type=ints, default=[0], help="e.g. 0,-1")
    parser.add_argument(
        "--prompts", default="advice,plain,compact", help="prompt styles to compare"
    )
    parser.add_argument(
        "--weights",
        default="q4_1",
        help="the bundled model's encodings to compare, e.g. q4_1,q8_0 (not with --model)",
    )
    parser.add_argument(
        "--trades",
        type=float,
        default=1.0,
        help="share of ticks whose wallet changed (1.0: every tick; a real life ~0.3)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    weights = [w for w in args.weights.split(",") if w]
    models = [args.model] if args.model else [default_model(w) for w in weights]
    threads = args.threads or [min(8, os.cpu_count() or 1)]
    styles = [p for p in args.prompts.split(",") if p]
    if unknown := [p for p in styles if p not in PROMPTS]:
        parser.error(f"--prompts {unknown}: expected some of {', '.join(PROMPTS)}")
    import llama_cpp

    print(
        f"decision: {', '.join(m.name for m in models)}, wallet changed on "
        f"{args.trades:.0%} of ticks, llama-cpp-python {llama_cpp.__version__}, "
        f"gpu offload supported: {bool(llama_cpp.llama_supports_gpu_offload())}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    results = []
    for gpu_layers, n in itertools.product(args.n_gpu_layers, threads):
        by_style = {}
        for model, style in itertools.product(models, styles):
            # an answer with a reason is always generated; the plain one either way
            for decode in ("grammar",) if style == "advice" else ("grammar", "answers"):
                row = run_config(model, n, gpu_layers, args.ticks, style, decode, args.trades)
                by_style[f"{model.name} {style}/{row['decode']}"] = row
                results.append(row)
                print_row(row)
        if len(by_style) > 1:
            medians = {k: v["runtime_median_s"] for k, v in by_style.items()}
            first, *rest = medians
            for other in rest:
                print(
                    f"  threads={n:<2} gpu_layers={gpu_layers:<3} {other} / {first} decide "
                    f"median: {medians[other] / medians[first]:.2f}",
                    flush=True,
                )
    names = [m.name for m in models]
    summary = {"models": names, "trades": args.trades, "results": results}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    record("decision", summary)
    return 0


def print_row(row: dict[str, Any]) -> None:
    n, gpu_layers = row["threads"], row["n_gpu_layers"]
    versus = "raw llama.cpp" if row["decode"] == "grammar" else "generating"
    print(
        f"  {row['model']} {row['prompt'] + '/' + row['decode']:<14} threads={n:<2} "
        f"gpu_layers={gpu_layers:<3} "
        f"{row['completion_tokens_median']:.0f} tokens | load {row['load_s']:.2f} s | "
        f"decide median {row['runtime_median_s'] * 1000:.0f} ms "
        f"(p90 {row['runtime_p90_s'] * 1000:.0f}) vs {versus} "
        f"{row['raw_median_s'] * 1000:.0f} ms (p90 {row['raw_p90_s'] * 1000:.0f}): "
        f"ratio {row['overhead_ratio']:.3f} | prefix reuse "
        f"{row['prefix_reuse_median']:.1%}, {row['new_tokens_median']} new tokens, evaluated / "
        f"new {row['evaluated_per_new_median']} | prompt {row['prompt_tok_s']:.0f} tok/s, "
        f"generation {row['gen_tok_s']:.0f} tok/s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
