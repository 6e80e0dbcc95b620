"""A thread count set for the model holds for every evaluation, prompts included."""

from __future__ import annotations

from pathlib import Path

import llama_cpp

from agent.model.deciders import LlamaDecider


def test_n_threads_bounds_prompt_evaluation_too(model_path: Path) -> None:
    # llama-cpp-python evaluates prompt batches on every core unless told otherwise, so an
    # agent set to one thread would take two cores for its prompts.
    decider = LlamaDecider(model_path, n_threads=1)
    try:
        ctx = decider._llm._ctx.ctx
        assert llama_cpp.llama_n_threads(ctx) == 1
        assert llama_cpp.llama_n_threads_batch(ctx) == 1
    finally:
        decider.close()
