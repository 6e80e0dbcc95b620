"""The model server's HTTP face (`forager model serve`): one `BatchEngine` on loopback.

It speaks the subset of the chat-completions shape that `ServedDecider` needs, with unknown
fields refused rather than ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from agent.errors import ModelError
from agent.model.engine import BatchEngine, Completion


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["json_object"]
    json_schema: dict[str, Any] = Field(alias="schema")


class ChatRequest(BaseModel):
    """What an agent asks: the chat-completions fields the engine applies, and no others."""

    model_config = ConfigDict(extra="forbid")
    messages: list[Message] = Field(min_length=1)
    response_format: ResponseFormat
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    max_tokens: int = Field(96, ge=1, le=1024)
    seed: int = Field(0, ge=0)
    user: str = Field("", max_length=64, description="the caller; its requests share a slot")
    model: str | None = Field(None, description="must name the served model when given")


def serve_app(engine: BatchEngine) -> FastAPI:
    """The engine over HTTP: `POST /v1/chat/completions` (the subset agents use) and `/health`.

    Fields it does not know are refused with 422, not ignored: an agent that asks for a setting
    the server would not apply learns it at once.
    """
    app = FastAPI(title="OpenForager model server", docs_url=None, redoc_url=None)
    _add_health_route(app, engine)
    _add_chat_route(app, engine)
    return app


def _add_health_route(app: FastAPI, engine: BatchEngine) -> None:
    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": engine.name,
            "adapter": engine.adapter,
            "slots": engine.slots_n,
            "active": engine.active(),
            "decode_calls": engine.decode_calls,
            "decoded_tokens": engine.decoded_tokens,
        }


def _add_chat_route(app: FastAPI, engine: BatchEngine) -> None:
    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict[str, Any]:
        if req.model not in (None, engine.name):
            raise HTTPException(404, f"model {req.model!r} is not served here ({engine.name})")
        try:
            done = engine.complete(
                [m.model_dump() for m in req.messages],
                schema=req.response_format.json_schema,
                temperature=req.temperature,
                max_tokens=req.max_tokens,
                seed=req.seed,
                client=req.user,
            )
        except ModelError as exc:
            raise HTTPException(400, str(exc)) from exc
        return _answer(engine.name, done)


def _answer(model: str, done: Completion) -> dict[str, Any]:
    """A completion in the chat-completions shape, with the engine's cache and queue figures."""
    return {
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": done.text},
                "finish_reason": done.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": done.cached_tokens},
        },
        "timings": {"queued_s": round(done.queued_s, 4), "latency_s": round(done.latency_s, 4)},
    }
