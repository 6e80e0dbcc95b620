"""llama.cpp's own server, built by set-up from the same source as the in-process engine and
run as `forager model serve` runs it: it answers the agent's schema in the OpenAI-compatible form
(`response_format` `json_schema`, as vLLM and SGLang take it too), the agent's own validation
catches an answer that breaks it, an adapter is applied to the requests that name it and to no
others, and a server killed under its agents is restarted while they live on."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.core.prompt import BARE_SCHEMA, PLAIN_PROMPT, build_messages, parse_decision
from agent.errors import ConfigError, ModelError
from agent.model.deciders import ServedDecider, _lora_request
from agent.model.llama_server import ServerSpec, SupervisedServer
from arena.anvil import free_port
from bench.decision import observations
from tests.agent.core.test_prompt import observation
from tests.conftest import require_binary

RECENT = (2.06, 2.05, 2.07, 2.04, 2.06)
# Generation 1 of the run in docs/training.md (plain prompt): it sells when the price is above
# its recent median, where the base model under the same prompt buys.
ADAPTER = Path(__file__).parents[3] / "docs" / "evolution" / "evolve3" / "gen1" / "adapter.gguf"
RESTART_WAIT_S = 10.0
# Prices above their recent median: the situations where generation 1 sells.
ABOVE = observations(8, seed=3)[4:]


def served(url: str, adapter: Path | None = None) -> ServedDecider:
    return ServedDecider(
        url, system_prompt=PLAIN_PROMPT, schema=BARE_SCHEMA, temperature=0.0, adapter=adapter
    )


@pytest.fixture(scope="module")
def supervised(
    model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SupervisedServer]:
    """llama-server as `forager model serve` runs it: supervised, the trained adapter held."""
    require_binary("llama-server")
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("wb")
    spec = ServerSpec(model_path, free_port(), (ADAPTER,), slots=2, threads=2)
    # A long wait before a restart, so that a decision asked right after a crash meets no server.
    server = SupervisedServer(spec, log, restart_delays_s=(RESTART_WAIT_S,))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        log.close()


@pytest.fixture(scope="module")
def llama_server(supervised: SupervisedServer) -> str:
    return supervised.url


def ask(url: str, **body: object) -> dict[str, Any]:
    messages = build_messages(observation(), PLAIN_PROMPT, RECENT)
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"messages": messages, "temperature": 0.3, "max_tokens": 32, "seed": 7, **body},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_llama_server_answers_the_agents_schema_in_the_openai_form(llama_server: str):
    form = {"type": "json_schema", "json_schema": {"name": "decision", "schema": BARE_SCHEMA}}
    answer = ask(llama_server, response_format=form)
    content = answer["choices"][0]["message"]["content"]
    parsed = parse_decision(content)
    assert parsed.valid, (parsed.error, content)
    assert set(json.loads(content)) == {"action", "amount_pct"}
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 250 and 0 < usage["completion_tokens"] <= 32
    again = ask(llama_server, response_format=form)  # the same prompt: served from its cache
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] >= usage["prompt_tokens"] - 1


def test_an_answer_that_breaks_the_agents_rules_is_caught_by_its_own_validation(
    llama_server: str,
):
    """As from a server that answers to another schema (or none): the server is made to answer
    exactly an action the agent does not have and a size outside 0..100, and the agent's own
    parsing turns it into an invalid `hold` that says why."""
    other: dict[str, Any] = {
        "type": "object",
        "properties": {"action": {"enum": ["sell_everything"]}, "amount_pct": {"enum": [250]}},
        "required": ["action", "amount_pct"],
    }
    form = {"type": "json_schema", "json_schema": {"name": "other", "schema": other}}
    content = ask(llama_server, response_format=form)["choices"][0]["message"]["content"]
    assert json.loads(content) == {"action": "sell_everything", "amount_pct": 250}
    parsed = parse_decision(content)
    assert (parsed.action, parsed.valid) == ("hold", False)
    assert parsed.error is not None and "'sell_everything' is not one of" in parsed.error
    size = {**other, "properties": {**other["properties"], "action": {"enum": ["buy_risk"]}}}
    form = {"type": "json_schema", "json_schema": {"name": "size", "schema": size}}
    parsed = parse_decision(
        ask(llama_server, response_format=form)["choices"][0]["message"]["content"]
    )
    assert not parsed.valid and parsed.error == "amount_pct 250 is outside 0..100"


def test_an_agent_decides_through_llama_server_with_its_adapter_and_no_other(llama_server: str):
    """Agents with and without the adapter share one server: each request names its adapter, the
    answers differ where generation 1 learned to differ, and the base model's answer is the same
    before and after the adapter's requests on the same slots."""
    base, tuned = served(llama_server), served(llama_server, ADAPTER)
    try:
        assert base.name == tuned.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert (base._lora, tuned._lora) == ([{"id": 0, "scale": 0.0}], [{"id": 0, "scale": 1.0}])
        before = [base.decide(obs, recent) for obs, recent in ABOVE]
        after_tuned = [tuned.decide(obs, recent) for obs, recent in ABOVE]
        again = [base.decide(obs, recent) for obs, recent in ABOVE]
    finally:
        base.close()
        tuned.close()
    for decision in before + after_tuned:
        assert decision.valid, (decision.error, decision.raw)
        assert decision.model == "SmolLM2-135M-Instruct.Q4_1.gguf" and decision.completion_tokens
    assert [d.raw for d in again] == [d.raw for d in before]
    assert [d.action for d in after_tuned].count("sell_risk") >= 3, [d.raw for d in after_tuned]
    changed = sum(a.action != b.action for a, b in zip(before, after_tuned, strict=True))
    assert changed >= 3, ([d.raw for d in before], [d.raw for d in after_tuned])


def test_an_agent_refuses_a_server_that_does_not_hold_its_adapter(llama_server: str):
    elsewhere = ADAPTER.parent.parent / "gen2" / "adapter.gguf"
    with pytest.raises(ModelError, match=r"holds adapters \[.*gen1/adapter\.gguf\] but this agent"):
        served(llama_server, elsewhere)


def test_a_killed_server_is_restarted_and_its_agents_live_on(supervised: SupervisedServer):
    """kill -9 under an agent: the decision asked meanwhile is an invalid `hold` naming the
    server; the supervisor starts a new process, and the same agent's next decision is valid."""
    agent = served(supervised.url, ADAPTER)
    obs, recent = ABOVE[0]
    try:
        assert agent.decide(obs, recent).valid
        old = supervised.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        while supervised.pid == old and _alive(old):
            time.sleep(0.05)  # until the kernel has ended it (the supervisor then waits)
        lost = agent.decide(obs, recent)
        assert (lost.action, lost.valid) == ("hold", False)
        assert lost.error is not None and f"model server {supervised.url} failed" in lost.error
        deadline = time.monotonic() + RESTART_WAIT_S + 120
        while supervised.restarts == 0 or supervised.pid == old:
            assert time.monotonic() < deadline, "the supervisor did not restart llama-server"
            time.sleep(0.2)
        supervised.wait_healthy()
        back = agent.decide(obs, recent)
    finally:
        agent.close()
    assert back.valid and back.model == "SmolLM2-135M-Instruct.Q4_1.gguf", back.error
    assert supervised.restarts == 1


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie awaiting its parent's wait counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_the_command_line_holds_adapters_unapplied_and_bad_paths_are_named(
    tmp_path: Path, model_path: Path
):
    spec = ServerSpec(model_path, 8123, (ADAPTER,), slots=3, threads=2)
    cmd = spec.command()
    assert cmd[cmd.index("--parallel") + 1] == "3" and cmd[cmd.index("--ctx-size") + 1] == "6144"
    assert cmd[cmd.index("--lora") + 1] == str(ADAPTER.resolve())
    assert "--lora-init-without-apply" in cmd
    assert cmd[cmd.index("--alias") + 1] == model_path.name and "--no-webui" in cmd
    assert "--lora-init-without-apply" not in ServerSpec(model_path, 8123).command()
    with pytest.raises(ConfigError, match=r"missing\.gguf does not exist"):
        SupervisedServer(ServerSpec(model_path, 8123, (tmp_path / "missing.gguf",)))
    with pytest.raises(ConfigError, match=r"nowhere/llama-server was not found: `make setup`"):
        ServerSpec(model_path, 8123, binary=tmp_path / "nowhere" / "llama-server").command()


def test_each_request_names_the_agents_adapter_by_the_servers_id(tmp_path: Path):
    other = tmp_path / "gen2" / "adapter.gguf"
    served = [{"id": 0, "path": str(other)}, {"id": 1, "path": str(ADAPTER)}]
    assert _lora_request("u", served, ADAPTER) == [
        {"id": 0, "scale": 0.0},
        {"id": 1, "scale": 1.0},
    ]
    assert _lora_request("u", served, None) == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]
    assert _lora_request("u", [], None) is None
    # The same file name in another folder is another generation: refused, not guessed.
    with pytest.raises(ModelError, match=r"expects .*gen3/adapter\.gguf"):
        _lora_request("u", served, tmp_path / "gen3" / "adapter.gguf")
