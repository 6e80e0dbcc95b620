"""One model for several agents: a llama.cpp engine that decodes their sequences in one batch.

Agents on one node that each load the model pay for it once per process, in memory and in
compute that cannot be shared: every process decodes one sequence at a time. `BatchEngine` holds
one model and one context with a *slot* (a KV-cache sequence) per agent, and runs a single decode
loop: each step feeds one new token for every sequence that is generating and chunks of prompt
for every sequence that has just arrived, in one `llama_decode` call, then samples each sequence
with its own grammar-constrained sampler. A schema whose answers are a finite list (the plain
prompt's: an action and a size) is not generated at all: its answers' token tree is walked as
in-process (`agent.model.answers`), each branch one small evaluation, the forced tokens fed with
the pick, nothing after the last branch.

A slot keeps what its last request left in the cache, so an agent's next prompt only evaluates
what changed; a new agent copies the longest matching prefix (the system prompt) from any slot
instead of evaluating it again. `agent.model.server` puts the engine behind HTTP.
"""

from __future__ import annotations

import ctypes
import json
import queue
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ModelError
from agent.model.answers import AnswerTree, Node, schema_answers
from agent.model.cache import check_model_files

# A prompt plus its answer must fit in one slot's share of the context.
DEFAULT_SLOT_CTX = 1536
# Clients whose previous prompt is kept to count the new tokens of their next.
MAX_CLIENTS = 1024


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (end of turn) or "length" (max_tokens reached)
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int  # prompt tokens found in the cache, not evaluated again
    new_tokens: int  # from the first that differs from this client's previous prompt (0: none)
    queued_s: float  # waiting for a free slot
    latency_s: float  # from submission to the last token


@dataclass
class _Request:
    prompt: list[int]
    temperature: float
    max_tokens: int
    seed: int
    client: str
    grammar: Any  # a checked LlamaGrammar, shared by requests with the same schema
    future: Future[Completion]
    tree: AnswerTree | None = None  # the schema's answers, when they are a finite list
    new_tokens: int = 0
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class _Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # what the cache holds for this sequence
    client: str | None = None
    last_used: float = 0.0
    request: _Request | None = None
    pending: list[int] = field(default_factory=list)  # prompt not yet evaluated
    next_token: int | None = None  # sampled, not yet fed
    generated: list[int] = field(default_factory=list)
    cached: int = 0
    admitted: float = 0.0
    sampler: Any = None
    logits_at: int = -1  # this step's batch index whose logits this slot samples
    node: Node | None = None  # where an answer tree's walk is
    rng: random.Random | None = None  # the walk's picks


def _check_inputs(model_path: Path, lora_path: Path | None, slots: int) -> None:
    check_model_files(model_path, lora_path)
    if slots < 1:
        raise ModelError(f"slots must be at least 1, got {slots}")


def _place(batch: Any, n: int, slot: _Slot, token: int, *, logits: bool) -> None:
    """Put one token of `slot`'s sequence at position `n` of the batch."""
    batch.token[n] = token
    batch.pos[n] = len(slot.tokens)
    batch.n_seq_id[n] = 1
    batch.seq_id[n][0] = slot.seq
    batch.logits[n] = logits
    slot.tokens.append(token)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class BatchEngine:
    """One `llama.cpp` model serving several agents' decisions, batched."""

    def __init__(
        self,
        model_path: Path,
        *,
        slots: int = 4,
        slot_ctx: int = DEFAULT_SLOT_CTX,
        n_batch: int = 256,
        flash_attn: bool = True,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        lora_path: Path | None = None,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        set_verbose(False)
        _check_inputs(model_path, lora_path, slots)
        self._ll = llama_cpp
        self._internals: Any = _internals
        self.slots_n, self.slot_ctx, self.n_batch = slots, slot_ctx, n_batch
        self.name = model_path.name
        self.adapter = lora_path.name if lora_path else None
        self.adapter_path = lora_path
        self._model = self._load_model(model_path, n_gpu_layers)
        self._ctx = self._new_context(model_path, n_threads, flash_attn)
        self._lora = None
        if lora_path is not None:
            self._set_adapter(lora_path)
        self._batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._format: Any = self._chat_format(model_path)
        self._start_loop()

    def _chat_format(self, model_path: Path) -> Any:
        """The model's own chat template, which turns messages into its prompt."""
        from llama_cpp import llama_chat_format

        template = self._model.metadata().get("tokenizer.chat_template")
        if not template:
            self.close()
            raise ModelError(f"model {model_path} has no chat template in its metadata")
        eos = self._model.token_eos()
        bos = self._model.token_bos()
        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=self._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _start_loop(self) -> None:
        self._slots = [_Slot(seq=i) for i in range(self.slots_n)]
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._waiting: list[_Request] = []
        self._grammars: dict[str, Any] = {}
        self._grammars_lock = threading.Lock()
        # Each client's previous prompt, to count what is new in the next (the most recent
        # MAX_CLIENTS clients; insertion order is recency).
        self._previous: dict[str, list[int]] = {}
        self._previous_lock = threading.Lock()
        self._stopping = False
        self.decode_calls = 0
        self.decoded_tokens = 0
        self._thread = threading.Thread(target=self._run, name="batch-engine", daemon=True)
        self._thread.start()

    def _load_model(self, model_path: Path, n_gpu_layers: int) -> Any:
        params = self._ll.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        try:
            return self._internals.LlamaModel(
                path_model=str(model_path), params=params, verbose=False
            )
        except ValueError as exc:
            raise ModelError(f"model {model_path} failed to load: {exc}") from exc

    def _new_context(self, model_path: Path, n_threads: int | None, flash_attn: bool) -> Any:
        params = self._context_params(n_threads, flash_attn)
        try:
            return self._internals.LlamaContext(model=self._model, params=params, verbose=False)
        except ValueError as exc:
            self._model.close()
            raise ModelError(
                f"model {model_path}: no context of {params.n_ctx} tokens: {exc}"
            ) from exc

    def _context_params(self, n_threads: int | None, flash_attn: bool) -> Any:
        ll = self._ll
        params = ll.llama_context_default_params()
        params.n_ctx = self.slot_ctx * self.slots_n
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        params.n_seq_max = self.slots_n
        # One cache for all slots: a copied prefix is shared cells, not a copy. (Separate streams
        # measured no faster here, and copy only whole sequences.)
        params.kv_unified = True
        params.n_threads = params.n_threads_batch = n_threads or 1
        params.flash_attn_type = (
            ll.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else ll.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        return params

    def _set_adapter(self, lora_path: Path) -> None:
        ll = self._ll
        self._lora = ll.llama_adapter_lora_init(self._model.model, str(lora_path).encode())
        if self._lora is not None:
            adapters = (ll.llama_adapter_lora_p_ctypes * 1)(self._lora)
            scales = (ctypes.c_float * 1)(1.0)
            if ll.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales) == 0:
                return
        self.close()
        raise ModelError(f"adapter {lora_path} did not load into llama.cpp")

    # ---- the caller's side (any thread) ---------------------------------------------------

    def submit(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any],
        temperature: float = 0.3,
        max_tokens: int = 96,
        seed: int = 0,
        client: str = "",
    ) -> Future[Completion]:
        """Queue one chat completion; the future holds its `Completion` (or a ModelError)."""
        if self._stopping or not self._thread.is_alive():
            raise ModelError("the model engine is closed")
        tree = self._tree(schema)
        grammar = None if tree is not None else self._grammar(schema)
        prompt = self._prompt(messages, max_tokens)
        request = _Request(
            prompt, temperature, max_tokens, seed, client, grammar, future=Future(), tree=tree
        )
        request.new_tokens = self._new_since(client, prompt)
        self._queue.put(request)
        return request.future

    def _new_since(self, client: str, prompt: list[int]) -> int:
        """Tokens of `prompt` from the first that differs from the client's previous prompt:
        what a cache that kept that prompt still has to evaluate (all of it for a newcomer; 0
        for a request that names no client)."""
        if not client:
            return 0
        with self._previous_lock:
            before = self._previous.pop(client, [])
            self._previous[client] = prompt
            while len(self._previous) > MAX_CLIENTS:
                del self._previous[next(iter(self._previous))]
        return len(prompt) - _common_prefix(before, prompt)

    def _tree(self, schema: dict[str, Any]) -> AnswerTree | None:
        """The schema's answers as a token tree, built once; None when they are not a finite
        list (an answer with free text is generated under the grammar)."""
        key = "tree:" + json.dumps(schema, sort_keys=True)
        with self._grammars_lock:
            if key not in self._grammars:
                texts = schema_answers(schema)
                tokens = [
                    self._model.tokenize(t.encode(), add_bos=False, special=False)
                    for t in texts or ()
                ]
                self._grammars[key] = AnswerTree(tokens, texts) if texts else None
            tree: AnswerTree | None = self._grammars[key]
            return tree

    def _prompt(self, messages: list[dict[str, str]], max_tokens: int) -> list[int]:
        """The messages as prompt tokens, refused when they and the answer overflow a slot."""
        formatted = self._format(messages=messages)
        prompt: list[int] = self._model.tokenize(
            formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
        )
        if len(prompt) + max_tokens > self.slot_ctx:
            raise ModelError(
                f"prompt of {len(prompt)} tokens plus max_tokens {max_tokens} does not fit a "
                f"slot of {self.slot_ctx} tokens"
            )
        return prompt

    def _grammar(self, schema: dict[str, Any]) -> Any:
        """The grammar of a JSON schema, built and checked once, here and not in the decode
        loop: a schema llama.cpp cannot use fails its own request, not every agent's."""
        key = json.dumps(schema, sort_keys=True)
        with self._grammars_lock:
            grammar = self._grammars.get(key)
            if grammar is None:
                grammar = self._grammars[key] = self._checked_grammar(key)
            return grammar

    def _checked_grammar(self, key: str) -> Any:
        from llama_cpp.llama_grammar import LlamaGrammar

        try:
            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
        except Exception as exc:  # the converter asserts and raises what it likes
            raise ModelError(f"response_format schema {key[:200]} is not usable: {exc}") from exc
        check = self._ll.llama_sampler_init_grammar(
            self._model.vocab, grammar._grammar.encode(), grammar._root.encode()
        )
        if not check:
            raise ModelError(f"response_format schema {key[:200]}: llama.cpp rejects its grammar")
        self._ll.llama_sampler_free(check)
        return grammar

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> Completion:
        return self.submit(messages, **kwargs).result()

    def active(self) -> int:
        return sum(s.request is not None for s in self._slots)

    def close(self) -> None:
        """Finish nothing new; fail what is queued; free the model."""
        if getattr(self, "_thread", None) is not None and self._thread.is_alive():
            self._stopping = True
            self._queue.put(None)
            self._thread.join()
        for closeable in ("_batch", "_ctx"):
            obj = getattr(self, closeable, None)
            if obj is not None:
                obj.close()
        if getattr(self, "_lora", None) is not None:
            self._ll.llama_adapter_lora_free(self._lora)
            self._lora = None
        if getattr(self, "_model", None) is not None:
            self._model.close()

    # ---- the decode loop (one thread owns the context) --------------------------------------

    def _run(self) -> None:
        failure = ModelError("the model engine is closed")
        try:
            while self._take(block=self.active() == 0 and not self._waiting):
                self._admit()
                if self.active():
                    self._step()
        except Exception as exc:
            failure = ModelError(f"model engine stopped: {exc}")  # no caller waits forever
            raise
        finally:
            self._fail_all(failure)

    def _fail_all(self, failure: ModelError) -> None:
        for slot in self._slots:
            if slot.request is not None and not slot.request.future.done():
                slot.request.future.set_exception(failure)
            slot.request = None
        for req in self._waiting:
            req.future.set_exception(failure)
        self._waiting.clear()
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                return
            if left is not None and left.future.set_running_or_notify_cancel():
                left.future.set_exception(failure)

    def _take(self, *, block: bool) -> bool:
        """Move submitted requests to the waiting list; False when asked to stop."""
        try:
            item = self._queue.get(timeout=0.5) if block else self._queue.get_nowait()
        except queue.Empty:
            return not self._stopping
        while True:
            if item is None:
                return False
            self._waiting.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True

    def _admit(self) -> None:
        while self._waiting:
            idle = [s for s in self._slots if s.request is None]
            if not idle:
                return
            req = self._waiting.pop(0)
            if not req.future.set_running_or_notify_cancel():
                continue
            # The client's own slot if idle (its cache holds its last prompt), else the least
            # recently used.
            mine = [s for s in idle if s.client == req.client]
            slot = mine[0] if mine else min(idle, key=lambda s: s.last_used)
            self._load(slot, req)

    def _load(self, slot: _Slot, req: _Request) -> None:
        ll, memory = self._ll, self._ctx.memory
        own = _common_prefix(slot.tokens, req.prompt)
        best, source = own, slot
        for other in self._slots:
            if other is not slot:
                n = _common_prefix(other.tokens, req.prompt)
                if n > best:
                    best, source = n, other
        keep = min(best, len(req.prompt) - 1)  # evaluate at least one token for its logits
        if source is slot:
            ll.llama_memory_seq_rm(memory, slot.seq, keep, -1)
        else:
            ll.llama_memory_seq_rm(memory, slot.seq, 0, -1)
            ll.llama_memory_seq_cp(memory, source.seq, slot.seq, 0, keep)
        slot.tokens = req.prompt[:keep]
        slot.pending = req.prompt[keep:]
        slot.cached = keep
        slot.client = req.client
        slot.request = req
        slot.generated = []
        slot.next_token = None
        slot.admitted = time.perf_counter()
        if req.tree is not None:
            slot.node, forced = req.tree.forced(req.tree.root)
            slot.pending += forced
            slot.generated = list(forced)
            slot.rng = random.Random(req.seed)  # noqa: S311 -- a reproducible pick
        else:
            slot.sampler = self._sampler(req)

    def _sampler(self, req: _Request) -> Any:
        """The same chain llama-cpp-python builds for a chat completion with a schema."""
        sampler = self._internals.LlamaSampler()
        sampler.add_grammar(self._model, req.grammar)
        if req.temperature == 0.0:
            sampler.add_greedy()
        else:
            sampler.add_top_k(40)
            sampler.add_typical(1.0, 1)
            sampler.add_top_p(0.95, 1)
            sampler.add_min_p(0.05, 1)
            sampler.add_temp(req.temperature)
            sampler.add_dist(req.seed & 0xFFFFFFFF)
        return sampler

    def _step(self) -> None:
        """One decode: a token for each generating sequence, prompt chunks for the others."""
        batch = self._batch.batch
        n = self._feed_prompts(batch, self._feed_generated(batch))
        batch.n_tokens = n
        status = self._ll.llama_decode(self._ctx.ctx, batch)
        if status != 0:
            raise ModelError(f"llama_decode returned {status} for a batch of {n} tokens")
        self.decode_calls += 1
        self.decoded_tokens += n
        for slot in self._slots:
            if slot.logits_at >= 0 and slot.request is not None:
                self._sample(slot)

    def _feed_generated(self, batch: Any) -> int:
        """Each generating sequence's last sampled token; returns the batch's length."""
        n = 0
        for slot in self._slots:
            slot.logits_at = -1
            if slot.request is not None and slot.next_token is not None:
                _place(batch, n, slot, slot.next_token, logits=True)
                slot.next_token = None
                slot.logits_at = n
                n += 1
        return n

    def _feed_prompts(self, batch: Any, n: int) -> int:
        """Chunks of the prompts not yet evaluated, as far as the batch has room."""
        for slot in self._slots:
            if slot.request is None or not slot.pending or n >= self.n_batch:
                continue
            chunk = slot.pending[: self.n_batch - n]
            slot.pending = slot.pending[len(chunk) :]
            for token in chunk:
                _place(batch, n, slot, token, logits=False)
                n += 1
            if not slot.pending:  # the prompt's last token: its logits give the first answer
                batch.logits[n - 1] = True
                slot.logits_at = n - 1
        return n

    def _sample(self, slot: _Slot) -> None:
        assert slot.request is not None
        if slot.request.tree is not None:
            self._branch(slot, slot.request.tree)
            return
        token = self._ll.llama_sampler_sample(slot.sampler.sampler, self._ctx.ctx, slot.logits_at)
        if self._ll.llama_vocab_is_eog(self._model.vocab, token):
            self._finish(slot, "stop")
            return
        slot.generated.append(token)
        if len(slot.generated) >= slot.request.max_tokens:
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _branch(self, slot: _Slot, tree: AnswerTree) -> None:
        """The walk's next pick from this step's logits, then the forced tokens after it (fed
        as the slot's prompt is: the last one's logits give the next branch); at an answer's
        end, the answer."""
        assert slot.node is not None and slot.rng is not None and slot.request is not None
        if slot.node.answer is None:
            logits = self._ctx.get_logits_ith(slot.logits_at)
            token, node = tree.branch(slot.node, logits, slot.request.temperature, slot.rng)
            slot.node, forced = tree.forced(node)
            slot.generated += [token, *forced]
            if slot.node.answer is None:
                slot.pending = [token, *forced]
                return
        self._finish(slot, "stop", slot.node.answer)

    def _finish(self, slot: _Slot, reason: str, answer: str | None = None) -> None:
        req = slot.request
        assert req is not None
        text = answer
        if text is None:
            text = self._model.detokenize(slot.generated, special=False).decode("utf-8", "replace")
        now = time.perf_counter()
        if slot.sampler is not None:
            slot.sampler.close()
        slot.sampler, slot.node, slot.rng = None, None, None
        slot.request = None  # free before the caller hears: it may ask again at once
        slot.last_used = now
        req.future.set_result(
            Completion(
                text=text,
                finish_reason=reason,
                prompt_tokens=len(req.prompt),
                completion_tokens=len(slot.generated),
                cached_tokens=slot.cached,
                new_tokens=req.new_tokens,
                queued_s=slot.admitted - req.submitted,
                latency_s=now - req.submitted,
            )
        )
