"""How close the bundled model's other encodings answer to the bundled file itself.

A re-encoded model (`FORAGER_MODEL__WEIGHTS=q8_0`) holds the same weights to within its
rounding, and llama.cpp computes with it by other kernels, so its answers move. For each
observation of a deterministic series this loads each encoding in turn, with the compact prompt
and, if given, a trained adapter, reads every possible answer's probability at the agents'
temperature (`LlamaDecider.probabilities`) and prints, against the bundled q4_1:

- the total variation distance between the two answer distributions (0: the same; 1: disjoint),
  mean and largest over the observations;
- on how many observations the most likely answer, and the most likely action, are the same.

    python -m bench.weights [--weights q8_0] [--lora ADAPTER.gguf] [--observations 40]
                            [--temperature 0.3]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from agent.config import default_cache_dir
from agent.core.prompt import answer_schema, system_prompt
from agent.model.cache import DEFAULT_MODEL, locate_default
from agent.model.deciders import LlamaDecider
from bench.decision import observations
from bench.results import record

Distribution = dict[str, float]


def distributions(
    model: Path, lora: Path | None, series: list[Any], temperature: float
) -> list[Distribution]:
    """Every answer's probability on each observation of `series`."""
    decider = LlamaDecider(
        model,
        n_threads=2,
        lora_path=lora,
        system_prompt=system_prompt(style="compact"),
        schema=answer_schema("compact"),
        style="compact",
    )
    try:
        return [decider.probabilities(obs, recent, temperature) for obs, recent in series]
    finally:
        decider.close()


def total_variation(p: Distribution, q: Distribution) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in p.keys() | q.keys())


def top_action(p: Distribution, action_of: dict[str, str]) -> str:
    by_action: dict[str, float] = defaultdict(float)
    for answer, probability in p.items():
        by_action[action_of[answer]] += probability
    return max(by_action, key=by_action.__getitem__)


def compare(reference: list[Distribution], other: list[Distribution]) -> dict[str, Any]:
    action_of = {answer: json.loads(answer)["action"] for answer in reference[0]}
    tv = [total_variation(p, q) for p, q in zip(reference, other, strict=True)]
    return {
        "observations": len(tv),
        "total_variation_mean": round(statistics.fmean(tv), 4),
        "total_variation_max": round(max(tv), 4),
        "same_top_answer": sum(
            max(p, key=p.__getitem__) == max(q, key=q.__getitem__)
            for p, q in zip(reference, other, strict=True)
        ),
        "same_top_action": sum(
            top_action(p, action_of) == top_action(q, action_of)
            for p, q in zip(reference, other, strict=True)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="q8_0", help="encodings to compare with q4_1")
    parser.add_argument("--lora", type=Path, action="append", default=[], help="an adapter")
    parser.add_argument("--observations", type=int, default=40)
    parser.add_argument("--temperature", type=float, default=0.3)
    args = parser.parse_args(argv)
    cache = default_cache_dir()
    series = observations(args.observations, seed=3, trades=0.5)
    rows = []
    for lora in [None, *args.lora]:
        what = lora.parent.name + "/" + lora.name if lora else "no adapter"
        reference = distributions(locate_default(cache), lora, series, args.temperature)
        for weights in (w for w in args.weights.split(",") if w):
            model = locate_default(cache, weights=weights)
            row = {
                "weights": weights,
                "adapter": what,
                **compare(reference, distributions(model, lora, series, args.temperature)),
            }
            rows.append(row)
            print(
                f"  {weights} vs {DEFAULT_MODEL.weights}, {what}: total variation mean "
                f"{row['total_variation_mean']} (largest {row['total_variation_max']}); same "
                f"most likely answer {row['same_top_answer']}/{row['observations']}, action "
                f"{row['same_top_action']}/{row['observations']}",
                flush=True,
            )
    record("weights", {"temperature": args.temperature, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
