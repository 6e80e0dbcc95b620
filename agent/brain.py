"""Deciders: what turns an Observation into a Decision.

`LlamaDecider` runs a local GGUF model through llama.cpp with a JSON-schema grammar. A `Llama`
object is not thread-safe, so there is one per process, used behind one lock.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol

from agent.errors import ModelError
from agent.prompt import DECISION_SCHEMA, SYSTEM_PROMPT, build_messages, parse_decision
from agent.records import Decision, Observation


class Decider(Protocol):
    """Proposes a decision for an observation. It holds no authority: the policy decides."""

    @property
    def name(self) -> str: ...

    def decide(self, obs: Observation, recent_prices: tuple[float, ...]) -> Decision: ...

    def close(self) -> None: ...


class LlamaDecider:
    """A local language model, constrained to answer with the decision schema."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        temperature: float = 0.3,
        max_tokens: int = 96,
        seed: int = 0,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        import llama_cpp  # heavy import, kept out of module import time

        if not model_path.is_file():
            raise ModelError(f"model file {model_path} does not exist (expected a GGUF file)")
        self._llama_cpp = llama_cpp
        self._lock = threading.Lock()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_gpu_layers=n_gpu_layers,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model {model_path} failed to load: {exc}") from exc
        self._name = model_path.name
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.system_prompt = system_prompt

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Free the model (llama.cpp memory and file handles)."""
        with self._lock:
            self._llm.close()

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        messages = build_messages(obs, self.system_prompt, recent_prices)
        started = time.perf_counter()
        with self._lock:
            self._llama_cpp.llama_perf_context_reset(self._llm._ctx.ctx)
            response: Any = self._llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                response_format={"type": "json_object", "schema": DECISION_SCHEMA},
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=self.seed + obs.tick,
            )
            evaluated = int(self._llama_cpp.llama_perf_context(self._llm._ctx.ctx).n_p_eval)
        latency = time.perf_counter() - started
        choice = response["choices"][0]
        raw = choice["message"]["content"] or ""
        usage = response.get("usage", {})
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        parsed = parse_decision(raw)
        error = parsed.error
        if error and choice.get("finish_reason") == "length":
            error = f"{error} (output cut at max_tokens={self.max_tokens})"
        return Decision(
            action=parsed.action,
            amount_pct=parsed.amount_pct,
            reason=parsed.reason,
            valid=error is None,
            error=error,
            raw=raw,
            model=self._name,
            prompt_tokens=prompt_tokens,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            cached_tokens=max(0, prompt_tokens - evaluated),
            finish_reason=str(choice.get("finish_reason") or ""),
            latency_s=latency,
        )
