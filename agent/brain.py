"""Deciders: what turns an Observation into a Decision.

`LlamaDecider` runs a local GGUF model through llama.cpp with a JSON-schema grammar. A `Llama`
object is not thread-safe, so there is one per process, used behind one lock.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace

from agent.errors import ModelError
from agent.prompt import DECISION_SCHEMA, SYSTEM_PROMPT, build_messages, parse_decision
from agent.records import Decision, Observation
from telemetry import genai


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
        n_ctx: int = 1536,
        n_batch: int = 256,
        flash_attn: bool = True,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        temperature: float = 0.3,
        max_tokens: int = 96,
        seed: int = 0,
        system_prompt: str = SYSTEM_PROMPT,
        capture_content: bool = False,
        lora_path: Path | None = None,
    ) -> None:
        import llama_cpp  # heavy import, kept out of module import time

        if not model_path.is_file():
            raise ModelError(f"model file {model_path} does not exist (expected a GGUF file)")
        if lora_path is not None and not lora_path.is_file():
            raise ModelError(f"adapter {lora_path} does not exist (expected a GGUF LoRA adapter)")
        self._llama_cpp = llama_cpp
        self._lock = threading.Lock()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                flash_attn=flash_attn,
                n_threads=n_threads,
                n_gpu_layers=n_gpu_layers,
                seed=seed,
                verbose=False,
                lora_path=str(lora_path) if lora_path else None,
            )
        except (ValueError, RuntimeError) as exc:
            what = f"model {model_path}" + (f" with adapter {lora_path}" if lora_path else "")
            raise ModelError(f"{what} failed to load: {exc}") from exc
        # llama-cpp-python ignores arguments it does not know: check the adapter is really on.
        if lora_path and getattr(self._llm, "_lora_adapter", None) is None:
            raise ModelError(f"adapter {lora_path} did not load into llama.cpp")
        self.adapter = lora_path.name if lora_path else None
        self._name = model_path.name
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.system_prompt = system_prompt
        self.capture_content = capture_content

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
        decision = Decision(
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
            prompt=tuple(messages),
        )
        self._annotate(trace.get_current_span(), obs, decision, messages)
        return decision

    def _annotate(
        self, span: trace.Span, obs: Observation, decision: Decision, messages: list[Any]
    ) -> None:
        """GenAI semantic-convention attributes on the decide span."""
        span.set_attributes(
            {
                genai.OPERATION_NAME: "chat",
                genai.PROVIDER_NAME: "llama_cpp",
                genai.REQUEST_MODEL: self._name,
                genai.RESPONSE_MODEL: self._name,
                genai.REQUEST_TEMPERATURE: self.temperature,
                genai.REQUEST_MAX_TOKENS: self.max_tokens,
                genai.REQUEST_SEED: self.seed + obs.tick,
                genai.OUTPUT_TYPE: "json",
                genai.USAGE_INPUT_TOKENS: decision.prompt_tokens,
                genai.USAGE_OUTPUT_TOKENS: decision.completion_tokens,
                genai.USAGE_CACHE_READ_INPUT_TOKENS: decision.cached_tokens,
                genai.RESPONSE_FINISH_REASONS: [decision.finish_reason or "unknown"],
            }
        )
        if self.capture_content:  # opt-in, as the conventions say: prompts can be sensitive
            span.set_attribute(genai.INPUT_MESSAGES, json.dumps(messages))
            output = [{"role": "assistant", "content": decision.raw}]
            span.set_attribute(genai.OUTPUT_MESSAGES, json.dumps(output))
