"""Deciders: what turns an Observation into a Decision.

`LlamaDecider` runs a local GGUF model through llama.cpp: an answer with no free text is chosen
among the schema's possible answers by their likelihoods (`agent.model.answers`), any other is
generated under the schema's grammar. A `Llama` object is not thread-safe, so there is one per
process, used behind one lock. `ServedDecider` asks a model server on the node (`forager model
serve`) that several agents share; it always generates.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace

from agent.core.prompt import DECISION_SCHEMA, SYSTEM_PROMPT, build_messages, parse_decision
from agent.core.records import Decision, Observation
from agent.errors import ModelError
from agent.model.answers import AnswerTree, schema_answers
from agent.model.cache import check_model_files
from telemetry import genai


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
        schema: dict[str, Any] = DECISION_SCHEMA,
        capture_content: bool = False,
        lora_path: Path | None = None,
        decode: str = "answers",
        style: str = "advice",
    ) -> None:
        import llama_cpp  # heavy import, kept out of module import time

        check_model_files(model_path, lora_path)
        self._llama_cpp = llama_cpp
        self._lock = threading.Lock()
        self._llm = _open_llama(
            model_path,
            lora_path,
            n_ctx=n_ctx,
            n_batch=n_batch,
            flash_attn=flash_attn,
            n_threads=n_threads,
            # llama-cpp-python evaluates prompts on every core unless told otherwise
            n_threads_batch=n_threads,
            n_gpu_layers=n_gpu_layers,
            seed=seed,
        )
        self.adapter = lora_path.name if lora_path else None
        self._name = model_path.name
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed
        self.system_prompt, self.capture_content = system_prompt, capture_content
        self.schema, self.style = schema, style
        self._tokens = _Prompts(self._llm)
        # "answers": the schema's answers scored, when they are a finite list (no reason)
        answers = _Answers(self._llm, self._tokens, schema) if decode == "answers" else None
        self._answers = answers if answers is not None and answers.tree is not None else None
        self.decode = "answers" if self._answers else "grammar"

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Free the model (llama.cpp memory and file handles)."""
        with self._lock:
            self._llm.close()

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        messages = build_messages(obs, self.system_prompt, recent_prices, self.style)
        if self._answers is not None:
            decision = self._choose(messages, self.seed + obs.tick)
            self._annotate(trace.get_current_span(), obs, decision, messages)
            return decision
        started = time.perf_counter()
        new = self._tokens.new(self._tokens.prompt(messages))
        response, evaluated = self._complete(messages, self.seed + obs.tick)
        latency = time.perf_counter() - started
        choice = response["choices"][0]
        usage = response.get("usage", {})
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        decision = to_decision(
            choice["message"]["content"] or "",
            finish_reason=str(choice.get("finish_reason") or ""),
            prompt_tokens=prompt_tokens,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            cached_tokens=max(0, prompt_tokens - evaluated),
            new_tokens=new,
            latency_s=latency,
            messages=messages,
            model=self._name,
            max_tokens=self.max_tokens,
        )
        self._annotate(trace.get_current_span(), obs, decision, messages)
        return decision

    def _choose(self, messages: list[dict[str, str]], seed: int) -> Decision:
        """One answer chosen by the answers' likelihoods (no generation)."""
        assert self._answers is not None
        started = time.perf_counter()
        with self._lock:
            answer, prompt_tokens, reused, length = self._answers.choose(
                messages,
                self.temperature,
                random.Random(seed),  # noqa: S311 -- a reproducible pick
            )
            new = self._tokens.new_since
        return to_decision(
            answer,
            finish_reason="stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=length,
            cached_tokens=reused,
            new_tokens=new,
            latency_s=time.perf_counter() - started,
            messages=messages,
            model=self._name,
            max_tokens=self.max_tokens,
        )

    def probabilities(
        self, obs: Observation, recent_prices: tuple[float, ...] = (), temperature: float = 1.0
    ) -> dict[str, float]:
        """Each possible answer's probability of being chosen at `temperature` (the
        `answers` decoding only)."""
        if self._answers is None:
            raise ModelError(
                "answer probabilities need decode=answers and an answer with no "
                "free text (the plain prompt)"
            )
        messages = build_messages(obs, self.system_prompt, recent_prices, self.style)
        with self._lock:
            return self._answers.probabilities(messages, temperature)

    def _complete(self, messages: list[dict[str, str]], seed: int) -> tuple[Any, int]:
        """One grammar-constrained chat completion, and how many prompt tokens it evaluated."""
        with self._lock:
            self._llama_cpp.llama_perf_context_reset(self._llm._ctx.ctx)
            response: Any = self._llm.create_chat_completion(
                messages=messages,
                response_format={"type": "json_object", "schema": self.schema},
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=seed,
            )
            evaluated = int(self._llama_cpp.llama_perf_context(self._llm._ctx.ctx).n_p_eval)
        return response, evaluated

    def _annotate(
        self, span: trace.Span, obs: Observation, decision: Decision, messages: list[Any]
    ) -> None:
        annotate(span, self, obs, decision, messages)


class _Prompts:
    """The prompt's tokens as llama-cpp-python's chat completion makes them (the model's own
    chat template), and how many of them are new since the previous prompt's."""

    def __init__(self, llm: Any) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm, self._format, self._previous = llm, None, list[int]()
        self.new_since = 0  # the last prompt's tokens from the first that differs from before
        template = llm.metadata.get("tokenizer.chat_template")
        self.templated = template is not None
        if template is not None:
            self._format = Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, llm.token_eos()),
                bos_token=_token_text(llm, llm.token_bos()),
            )

    def prompt(self, messages: list[dict[str, str]], room: int = 0) -> list[int]:
        """The tokens of `messages` (none without a chat template), checked to leave `room`
        tokens of the context for the answer."""
        if self._format is None:
            return []
        result = self._format(messages=messages)  # type: ignore[arg-type]
        tokens: list[int] = self._llm.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        if len(tokens) + room > self._llm.n_ctx():
            raise ModelError(
                f"the prompt is {len(tokens)} tokens and an answer up to {room}: more "
                f"than the context of {self._llm.n_ctx()} (FORAGER_MODEL__N_CTX)"
            )
        return tokens

    def new(self, tokens: list[int]) -> int:
        """How many of `tokens` follow the first that differs from the previous prompt's (all
        of them the first time); `tokens` becomes the previous prompt."""
        same = _common_prefix(self._previous, tokens)
        self._previous, self.new_since = tokens, len(tokens) - same
        return self.new_since


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same


class _Answers:
    """The schema's answers as a token tree over this `Llama`, walked after the prompt."""

    def __init__(self, llm: Any, prompts: _Prompts, schema: dict[str, Any]) -> None:
        self._llm, self._prompts, self.tree = llm, prompts, None
        texts = schema_answers(schema)
        if texts is None or not prompts.templated:
            return
        answers = [llm.tokenize(t.encode(), add_bos=False, special=False) for t in texts]
        self.longest = max(map(len, answers))
        self.tree = AnswerTree(answers, texts)

    def prompt(self, messages: list[dict[str, str]]) -> list[int]:
        return self._prompts.prompt(messages, self.longest)

    def choose(
        self, messages: list[dict[str, str]], temperature: float, rng: random.Random
    ) -> tuple[str, int, int, int]:
        """The answer, the prompt's tokens, how many of them were already evaluated (kept from
        the previous decision), and the answer's tokens."""
        assert self.tree is not None
        prompt = self.prompt(messages)
        self._prompts.new(prompt)
        reused = self._keep(prompt)
        walk = self.tree.walk(prompt[reused:], self._after, temperature, rng)
        return walk.answer, len(prompt), reused, walk.answer_tokens

    def probabilities(self, messages: list[dict[str, str]], temperature: float) -> dict[str, float]:
        assert self.tree is not None
        prompt = self.prompt(messages)

        def after_each(tokens: list[int]) -> list[float]:
            self._keep(tokens)
            return self._after(tokens[self._llm.n_tokens :])  # type: ignore[no-any-return]

        return self.tree.probabilities(prompt, after_each, temperature)

    def _keep(self, tokens: list[int]) -> int:
        """Keep the evaluated tokens that `tokens` starts with (all but its last, whose logits
        are needed); how many."""
        llm = self._llm
        llm.n_tokens = _common_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens[:-1])
        return int(llm.n_tokens)

    def _after(self, tokens: list[int]) -> Any:
        """`tokens` evaluated after those kept; the logits for the next token (llama.cpp's own
        buffer, read before the next evaluation)."""
        self._llm.eval(tokens)
        return self._llm._ctx.get_logits_ith(-1)


def _token_text(llm: Any, token: int) -> str:
    return str(llm._model.token_get_text(token)) if token != -1 else ""


def _open_llama(model_path: Path, lora_path: Path | None, **options: Any) -> Any:
    """A `Llama` on the model (and adapter), with the adapter checked to be really on."""
    import llama_cpp

    try:
        llm = llama_cpp.Llama(
            model_path=str(model_path),
            verbose=False,
            lora_path=str(lora_path) if lora_path else None,
            **options,
        )
    except (ValueError, RuntimeError) as exc:
        what = f"model {model_path}" + (f" with adapter {lora_path}" if lora_path else "")
        raise ModelError(f"{what} failed to load: {exc}") from exc
    # llama-cpp-python ignores arguments it does not know: check the adapter is really on.
    if lora_path and getattr(llm, "_lora_adapter", None) is None:
        raise ModelError(f"adapter {lora_path} did not load into llama.cpp")
    return llm


def _lora_request(
    url: str, served: list[dict[str, Any]], adapter: Path | None
) -> list[dict[str, Any]] | None:
    """The `lora` field of this agent's requests: its adapter at scale 1, the server's others at 0.

    None when the server has no adapters and the agent expects none. The agent's adapter is the
    server's adapter at the same path (the server is on this node; every generation's file is
    called adapter.gguf, so the name alone would not tell them apart); ModelError when the
    server does not hold it.
    """
    if adapter is None:
        return [{"id": a["id"], "scale": 0.0} for a in served] or None
    same = [a for a in served if Path(a["path"]).resolve() == adapter.resolve()]
    if not same:
        held = ", ".join(a["path"] for a in served) or "none"
        raise ModelError(
            f"model server {url} holds adapters [{held}] but this agent expects {adapter} "
            "(FORAGER_MODEL__LORA): serve it with forager model serve --lora"
        )
    mine = same[0]["id"]
    return [{"id": a["id"], "scale": 1.0 if a["id"] == mine else 0.0} for a in served]


def to_decision(
    raw: str,
    *,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    latency_s: float,
    messages: list[dict[str, str]],
    model: str,
    max_tokens: int,
    new_tokens: int = 0,
) -> Decision:
    """A model's answer, parsed and validated: anything wrong becomes an invalid `hold`."""
    parsed = parse_decision(raw)
    error = parsed.error
    if error and finish_reason == "length":
        error = f"{error} (output cut at max_tokens={max_tokens})"
    return Decision(
        action=parsed.action,
        amount_pct=parsed.amount_pct,
        reason=parsed.reason,
        valid=error is None,
        error=error,
        raw=raw,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        new_tokens=new_tokens,
        finish_reason=finish_reason,
        latency_s=latency_s,
        prompt=tuple(messages),
    )


def annotate(
    span: trace.Span,
    decider: LlamaDecider | ServedDecider,
    obs: Observation,
    decision: Decision,
    messages: list[Any],
) -> None:
    """GenAI semantic-convention attributes on the decide span."""
    span.set_attributes(
        {
            genai.OPERATION_NAME: "chat",
            genai.PROVIDER_NAME: "llama_cpp",
            genai.REQUEST_MODEL: decider.name,
            genai.RESPONSE_MODEL: decider.name,
            genai.REQUEST_TEMPERATURE: decider.temperature,
            genai.REQUEST_MAX_TOKENS: decider.max_tokens,
            genai.REQUEST_SEED: decider.seed + obs.tick,
            genai.OUTPUT_TYPE: "json",
            genai.USAGE_INPUT_TOKENS: decision.prompt_tokens,
            genai.USAGE_OUTPUT_TOKENS: decision.completion_tokens,
            genai.USAGE_CACHE_READ_INPUT_TOKENS: decision.cached_tokens,
            genai.RESPONSE_FINISH_REASONS: [decision.finish_reason or "unknown"],
        }
    )
    if decider.capture_content:  # opt-in, as the conventions say: prompts can be sensitive
        span.set_attribute(genai.INPUT_MESSAGES, json.dumps(messages))
        output = [{"role": "assistant", "content": decision.raw}]
        span.set_attribute(genai.OUTPUT_MESSAGES, json.dumps(output))


class ServedDecider:
    """The model of a node's model server, shared with the node's other agents.

    It speaks the OpenAI-compatible chat-completions API, so the server can be llama.cpp's
    `llama-server` (`forager model serve`, the default), `forager model serve --engine forager`,
    or vLLM and SGLang on a GPU node: the request carries the decision's JSON schema as
    `response_format` `{"type": "json_schema", ...}`, a seed, `max_tokens`, and the agent's
    adapter by id (`lora`, as llama-server applies it per request). The model's name is the
    server's `/v1/models`. The prompt, the parsing and the validation are this agent's: an
    answer the server let break the schema is an invalid `hold` that says why. When the server
    cannot be reached the decision is an invalid `hold` that names the failure: the tick goes on
    (rent is still paid) and the next one asks again. An agent that expects an adapter
    (`adapter`, the path of FORAGER_MODEL__LORA) refuses a server that does not hold it.
    """

    def __init__(
        self,
        url: str,
        *,
        temperature: float = 0.3,
        max_tokens: int = 96,
        seed: int = 0,
        system_prompt: str = SYSTEM_PROMPT,
        schema: dict[str, Any] = DECISION_SCHEMA,
        capture_content: bool = False,
        timeout_s: float = 120.0,
        client: str | None = None,
        adapter: Path | None = None,
        style: str = "advice",
    ) -> None:
        import httpx

        self._httpx = httpx
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        try:
            self._name = self._served_model()
            served = self._served_adapters()
            self._lora = _lora_request(self.url, served, adapter)
        except ModelError:
            self._http.close()
            raise
        self.adapter = adapter.name if adapter else None
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed
        self.system_prompt, self.capture_content = system_prompt, capture_content
        self.schema, self.style = schema, style
        # Requests from one agent go to the same slot, whose cache holds its last prompt.
        self.client = client or uuid.uuid4().hex

    def _get(self, path: str, *, body: bool = True) -> Any:
        try:
            reply = self._http.get(path)
            reply.raise_for_status()
            return reply.json() if body else None
        except (self._httpx.HTTPError, ValueError) as exc:
            raise ModelError(f"model server {self.url} did not answer {path}: {exc}") from exc

    def _served_model(self) -> str:
        """The model's id from `/v1/models`, once `/health` says the server is ready."""
        self._get("/health", body=False)  # vLLM's and SGLang's answer 200 with no body
        models = self._get("/v1/models")
        try:
            return str(models["data"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(
                f"model server {self.url} /v1/models names no model: {str(models)[:200]}"
            ) from exc

    def _served_adapters(self) -> list[dict[str, Any]]:
        """The server's adapters (`GET /lora-adapters`: id and path); none where it has none."""
        try:
            reply = self._http.get("/lora-adapters")
        except self._httpx.HTTPError as exc:
            raise ModelError(f"model server {self.url} did not answer /lora-adapters: {exc}") from (
                exc
            )
        if reply.status_code == 404:  # a server with no per-request adapters (vLLM, SGLang)
            return []
        try:
            reply.raise_for_status()
            adapters = reply.json()
            return [{"id": int(a["id"]), "path": str(a["path"])} for a in adapters]
        except (self._httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"model server {self.url} /lora-adapters is not a list of id and path: {exc}"
            ) from exc

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        self._http.close()

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        messages = build_messages(obs, self.system_prompt, recent_prices, self.style)
        started = time.perf_counter()
        try:
            response = self._ask(messages, self.seed + obs.tick)
            choice = response["choices"][0]
            usage = response["usage"]
            content = choice["message"]["content"] or ""
            details = usage.get("prompt_tokens_details") or {}
            cached, new = details.get("cached_tokens", 0), details.get("new_tokens", 0)
            prompt_tokens, completion_tokens = usage["prompt_tokens"], usage["completion_tokens"]
        except (self._httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            return self._unanswered(exc, messages, time.perf_counter() - started)
        decision = to_decision(
            content,
            finish_reason=str(choice.get("finish_reason") or ""),
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            cached_tokens=int(cached or 0),
            new_tokens=int(new or 0),  # our engine counts them; other servers do not
            latency_s=time.perf_counter() - started,
            messages=messages,
            model=self._name,
            max_tokens=self.max_tokens,
        )
        annotate(trace.get_current_span(), self, obs, decision, messages)
        return decision

    def _ask(self, messages: list[dict[str, str]], seed: int) -> Any:
        body: dict[str, Any] = {
            "messages": messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "decision", "strict": True, "schema": self.schema},
            },
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": seed,
            "user": self.client,
        }
        if self._lora is not None:
            body["lora"] = self._lora
        reply = self._http.post("/v1/chat/completions", json=body)
        reply.raise_for_status()
        return reply.json()

    def _unanswered(
        self, exc: Exception, messages: list[dict[str, str]], latency_s: float
    ) -> Decision:
        """The invalid `hold` of a tick whose server did not answer, saying why."""
        detail = str(exc)
        if isinstance(exc, self._httpx.HTTPStatusError):
            detail = f"{exc.response.status_code} {exc.response.text[:200]}"
        return Decision(
            action="hold",
            amount_pct=0,
            reason="",
            valid=False,
            error=f"model server {self.url} failed: {detail}",
            model=self._name,
            latency_s=latency_s,
            prompt=tuple(messages),
        )
