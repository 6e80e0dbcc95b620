"""One model for several agents: the batch engine, its HTTP server, and a fleet that shares it.

The engine decodes several agents' sequences in one batch; with greedy sampling its answers must
be the very answers llama-cpp-python gives each prompt alone, or batching changed what the model
says. All on the real bundled model.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from agent.config import load_settings
from agent.core.prompt import (
    BARE_SCHEMA,
    COMPACT_PROMPT,
    DECISION_SCHEMA,
    PLAIN_PROMPT,
    SYSTEM_PROMPT,
    build_messages,
)
from agent.daemon.wiring import build_decider
from agent.errors import ConfigError, ModelError
from agent.model.answers import schema_answers
from agent.model.deciders import LlamaDecider, ServedDecider
from agent.model.engine import BatchEngine
from agent.model.server import serve_app
from agent.populations.fleet import run_fleet
from arena.anvil import free_port
from bench.decision import observations
from tests.agent.populations.test_fleet import started

SAMPLES = observations(8, seed=3)


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[BatchEngine]:
    eng = BatchEngine(model_path, slots=3, n_threads=2)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def server(engine: BatchEngine) -> Iterator[str]:
    with _served_in_thread(serve_app(engine)) as url:
        yield url


def messages(i: int) -> list[dict[str, str]]:
    obs, recent = SAMPLES[i]
    return build_messages(obs, SYSTEM_PROMPT, recent)


# The model decodes the same answers twice (batched, then alone): 421 s seen with eight
# suites sharing two cores.
@pytest.mark.timeout(900)
def test_batched_answers_are_the_answers_each_prompt_gets_alone(
    engine: BatchEngine, model_path: Path
):
    alone = LlamaDecider(model_path, n_threads=2, temperature=0.0)
    try:
        expected = []
        for i in range(3):
            obs, recent = SAMPLES[i]
            expected.append(alone.decide(obs, recent).raw)
    finally:
        alone.close()
    # Three agents at once: their prompts and tokens share every decode call.
    calls = engine.decode_calls
    futures = [
        engine.submit(messages(i), schema=DECISION_SCHEMA, temperature=0.0, client=f"agent-{i}")
        for i in range(3)
    ]
    got = [f.result(timeout=120) for f in futures]
    # What acts is the same. Past it, in the reason, greedy decoding may take the other side of
    # a near tie: a batch's arithmetic is not a lone sequence's, bit for bit (seen once in 3
    # answers: `"reason": "buy_risk" }` batched, `"reason": "3% below ..."` alone).
    assert [_acts(g.text) for g in got] == [_acts(e) for e in expected]
    # Batched: fewer decode calls than the three answers' tokens one by one would take.
    generated = sum(g.completion_tokens for g in got)
    assert engine.decode_calls - calls < generated


@pytest.mark.timeout(900)
def test_a_finite_answer_is_walked_not_generated_as_in_process(
    engine: BatchEngine, model_path: Path
):
    """The plain prompt's answers are a list of 24: the engine walks their token tree, as the
    in-process decider does, a few batched evaluations instead of a token at a time."""
    alone = LlamaDecider(
        model_path, n_threads=2, temperature=0.0, system_prompt=PLAIN_PROMPT, schema=BARE_SCHEMA
    )
    try:
        expected = [alone.decide(*SAMPLES[i]).raw for i in range(3)]
    finally:
        alone.close()
    calls = engine.decode_calls
    futures = [
        engine.submit(
            build_messages(SAMPLES[i][0], PLAIN_PROMPT, SAMPLES[i][1]),
            schema=BARE_SCHEMA,
            temperature=0.0,
            client=f"plain-{i}",
        )
        for i in range(3)
    ]
    got = [f.result(timeout=300) for f in futures]
    answers = schema_answers(BARE_SCHEMA) or []
    assert [g.text for g in got] == expected and all(g.text in answers for g in got)
    assert all(g.finish_reason == "stop" for g in got)
    evaluated = sum(g.prompt_tokens - g.cached_tokens for g in got)
    # the prompts in batches, then at most three branches each; generating would take a call
    # per answer token
    assert engine.decode_calls - calls <= math.ceil(evaluated / engine.n_batch) + 3 * 3
    assert engine.decode_calls - calls < sum(g.completion_tokens for g in got)
    assert [g.completion_tokens for g in got] == [
        len(engine._model.tokenize(g.text.encode(), add_bos=False, special=False)) for g in got
    ]


def _acts(text: str) -> tuple[str, int]:
    answer = json.loads(text)
    return answer["action"], answer["amount_pct"]


def test_an_agent_reuses_its_own_cache_and_a_newcomer_copies_the_shared_prefix(
    engine: BatchEngine,
):
    first = engine.complete(messages(3), schema=DECISION_SCHEMA, client="returning")
    again = engine.complete(messages(4), schema=DECISION_SCHEMA, client="returning")
    # The system prompt is the same for everyone: a new client finds it in another slot.
    newcomer = engine.complete(messages(5), schema=DECISION_SCHEMA, client="newcomer")
    assert first.prompt_tokens > 700
    assert again.cached_tokens > 0.75 * again.prompt_tokens
    assert newcomer.cached_tokens > 0.75 * newcomer.prompt_tokens
    # New tokens are counted against the client's own previous prompt: all of a first prompt's,
    # the observation's on the next; what its own slot evaluated is no more than those.
    assert first.new_tokens == first.prompt_tokens and newcomer.new_tokens == newcomer.prompt_tokens
    assert 0 < again.new_tokens < again.prompt_tokens
    assert again.prompt_tokens - again.cached_tokens <= again.new_tokens + 1
    unnamed = engine.complete(messages(4), schema=DECISION_SCHEMA)
    assert unnamed.new_tokens == 0  # no client named: nothing to count against


def test_more_agents_than_slots_wait_their_turn(engine: BatchEngine):
    futures = [
        engine.submit(messages(i % 8), schema=DECISION_SCHEMA, max_tokens=8, client=f"crowd-{i}")
        for i in range(7)
    ]
    done = [f.result(timeout=300) for f in futures]
    assert all(d.completion_tokens <= 8 for d in done)
    assert max(d.queued_s for d in done) > 0  # seven requests, three slots: some queued
    assert engine.active() == 0


def test_a_prompt_too_long_for_a_slot_is_refused_with_its_size(engine: BatchEngine):
    huge = [{"role": "user", "content": "price 1.234 " * 2000}]
    with pytest.raises(ModelError, match=r"prompt of \d+ tokens plus max_tokens 96"):
        engine.submit(huge, schema=DECISION_SCHEMA, max_tokens=96)


def test_an_agent_decides_through_the_server(server: str):
    decider = ServedDecider(server, temperature=0.3)
    try:
        obs, recent = SAMPLES[6]
        decision = decider.decide(obs, recent)
        later = decider.decide(*SAMPLES[7])
    finally:
        decider.close()
    assert decision.valid, decision.error
    # the server counts the new tokens against this agent's previous prompt (`user`)
    assert decision.new_tokens == decision.prompt_tokens
    assert 0 < later.new_tokens < later.prompt_tokens
    assert decision.model.endswith(".gguf")
    assert decision.prompt_tokens > 700 and decision.completion_tokens > 0
    assert decision.prompt == tuple(build_messages(obs, SYSTEM_PROMPT, recent))
    compact = ServedDecider(
        server, system_prompt=COMPACT_PROMPT, schema=BARE_SCHEMA, style="compact"
    )
    try:
        short = compact.decide(obs, recent)
    finally:
        compact.close()
    # the compact observation, decided by the answers' tree on the server
    assert short.valid and short.raw in (schema_answers(BARE_SCHEMA) or [])
    assert (
        short.prompt[-1]["content"].startswith("Rent ")
        and "Tick" not in short.prompt[-1]["content"]
    )
    assert short.prompt_tokens < decision.prompt_tokens - 300


def test_the_server_refuses_fields_it_would_not_apply(server: str):
    body = {
        "messages": messages(0),
        "response_format": {"type": "json_object", "schema": DECISION_SCHEMA},
        "top_k": 5,  # llama-cpp-python would silently ignore this; the server says so
    }
    reply = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 422
    assert "top_k" in reply.text
    wrong = dict(body, response_format={"type": "json_schema", "json_schema": DECISION_SCHEMA})
    wrong.pop("top_k")  # the schema itself where OpenAI's form wraps it in {name, schema}
    reply = httpx.post(f"{server}/v1/chat/completions", json=wrong, timeout=60)
    assert reply.status_code == 422 and "json_schema" in reply.text and "name" in reply.text
    # It applies no adapter (or its one) to every request: another mix is refused, not ignored.
    mix = dict(body, lora=[{"id": 0, "scale": 1.0}])
    mix.pop("top_k")
    reply = httpx.post(f"{server}/v1/chat/completions", json=mix, timeout=60)
    assert reply.status_code == 422 and "--engine llama-server" in reply.text


def test_the_server_lists_its_model_and_adapters_as_llama_server_does(server: str):
    models = httpx.get(f"{server}/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    assert httpx.get(f"{server}/lora-adapters", timeout=10).json() == []


def test_a_schema_llama_cpp_cannot_use_fails_its_request_and_not_the_server(server: str):
    for schema in ({"type": "wat"}, {"type": "object", "properties": {"a": {"$ref": "#/x"}}}):
        body = {
            "messages": messages(1),
            "response_format": {"type": "json_object", "schema": schema},
        }
        reply = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
        assert reply.status_code == 400, reply.text
        assert "response_format schema" in reply.json()["detail"]
    good = {
        "messages": messages(1),
        "response_format": {"type": "json_object", "schema": DECISION_SCHEMA},
    }
    reply = httpx.post(f"{server}/v1/chat/completions", json=good | {"max_tokens": 8}, timeout=120)
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] > 0


def test_an_unreachable_server_is_a_named_error_then_an_invalid_hold(server: str):
    with pytest.raises(ModelError, match=r"model server http://127\.0\.0\.1:\d+ did not answer"):
        ServedDecider(f"http://127.0.0.1:{free_port()}")
    decider = ServedDecider(server)
    decider.url = decider._http.base_url = f"http://127.0.0.1:{free_port()}"  # it went away
    try:
        obs, recent = SAMPLES[7]
        decision = decider.decide(obs, recent)
    finally:
        decider.close()
    assert (decision.action, decision.valid) == ("hold", False)
    assert decision.error is not None and "model server http://127.0.0.1" in decision.error


def model_names(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT record FROM ticks").fetchall()
    return {json.loads(r[0])["decision"]["model"] for r in rows}


@pytest.mark.slow
@pytest.mark.timeout(900)  # a model server and two agent processes: 490 s seen on a busy machine
@pytest.mark.parametrize("engine", ["forager", "llama-server"])
def test_a_fleet_of_model_agents_shares_one_server(tmp_path: Path, engine: str):
    folder = tmp_path / "fleet"
    members = run_fleet(
        folder,
        agents=2,
        strategies=["llm"],
        ticks=3,
        settings=load_settings(),
        interval_s=1.0,
        seed=2,
        stagger_s=0.2,
        model_server=True,
        model_engine=engine,
        extra_env={"OTEL_SDK_DISABLED": "true"},
    )
    assert [m.exit_code for m in members] == [0, 0]
    log = (folder / "model-server.log").read_text()
    assert "model server: http://127.0.0.1:" in log and "2 slots" in log
    assert ("llama-server," in log) == (engine == "llama-server")
    for member in members:
        assert model_names(member.data_dir / "state.sqlite") == {"SmolLM2-135M-Instruct.Q4_1.gguf"}
        assert started(folder, member.name)["address"]


def test_a_bad_server_url_and_an_adapter_the_server_does_not_run_are_named(server: str):
    with pytest.raises(ConfigError, match="FORAGER_MODEL__SERVER_URL"):
        load_settings(model={"server_url": "127.0.0.1:8090"})
    # A fleet member inherits FORAGER_MODEL__LORA: the server must run that very adapter.
    settings = load_settings(strategy="llm", model={"server_url": server, "lora": "gen1.gguf"})
    with pytest.raises(ModelError, match=r"holds adapters \[none\] but this agent expects gen1"):
        build_decider(settings)


def test_an_agent_speaks_to_a_server_shaped_like_vllm(tmp_path: Path):
    """The handshake and answer of a server that is neither ours nor llama-server (as vLLM and
    SGLang answer): `/health` with no body, no `/lora-adapters`, no cached-token figures. A
    scripted stand-in for the server's side (what is tested is the agent's client); its answer
    is checked by the agent as any other."""
    app = FastAPI()
    asked: list[dict[str, Any]] = []

    @app.get("/health")
    def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "HuggingFaceTB/SmolLM2-135M-Instruct"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        asked.append(await request.json())
        content = json.dumps({"action": "buy_risk", "amount_pct": 10, "reason": "cheap"})
        return {
            "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 19},
        }

    with _served_in_thread(app) as url:
        decider = ServedDecider(url, seed=5)
        try:
            obs, recent = SAMPLES[2]
            decision = decider.decide(obs, recent)
        finally:
            decider.close()
        with pytest.raises(ModelError, match=r"holds adapters \[none\] but this agent expects"):
            ServedDecider(url, adapter=tmp_path / "gen1" / "adapter.gguf")
    assert decision.valid and (decision.action, decision.amount_pct) == ("buy_risk", 10)
    assert decision.model == "HuggingFaceTB/SmolLM2-135M-Instruct" and decision.cached_tokens == 0
    form = asked[0]["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["schema"] == DECISION_SCHEMA
    assert asked[0]["seed"] == 5 + obs.tick and "lora" not in asked[0]


@contextmanager
def _served_in_thread(app: FastAPI) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not srv.started:
            assert time.monotonic() < deadline, "the scripted server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
