"""llama.cpp's own server, built by set-up from the same source as the in-process engine: it
answers the agent's schema in the OpenAI-compatible form (`response_format` `json_schema`, as
vLLM and SGLang take it too), and the agent's own validation catches an answer that breaks it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.core.prompt import BARE_SCHEMA, PLAIN_PROMPT, build_messages, parse_decision
from arena.anvil import free_port
from tests.agent.core.test_prompt import observation
from tests.conftest import require_binary

RECENT = (2.06, 2.05, 2.07, 2.04, 2.06)


@pytest.fixture(scope="module")
def llama_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("llama-server")
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w")
    proc = subprocess.Popen(
        [binary, "-m", str(model_path), "--host", "127.0.0.1", "--port", str(port),
         "-t", "2", "-c", "2048", "--parallel", "1", "--no-webui"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"llama-server exited {proc.returncode}: see {log.name}"
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama-server did not become healthy in 120 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


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
