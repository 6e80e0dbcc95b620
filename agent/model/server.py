"""Our own engine's HTTP face (`forager model serve --engine forager`): one `BatchEngine`.

It speaks the subset of the OpenAI-compatible API that `ServedDecider` needs (the same subset
llama-server answers), with unknown fields refused rather than ignored. Its one adapter is
applied to every request: a request that asks for another mix is refused.
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


class JsonSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(max_length=64)
    strict: bool = True
    json_schema: dict[str, Any] = Field(alias="schema")


class ResponseFormat(BaseModel):
    """OpenAI's `json_schema` form, or llama-cpp-python's `json_object` with a `schema`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["json_object", "json_schema"]
    object_schema: dict[str, Any] | None = Field(None, alias="schema")
    json_schema: JsonSchema | None = None

    def schema_(self) -> dict[str, Any]:
        if self.type == "json_schema" and self.json_schema is not None:
            return self.json_schema.json_schema
        if self.type == "json_object" and self.object_schema is not None:
            return self.object_schema
        raise ModelError(
            "response_format must be {type: json_schema, json_schema: {name, schema}} or "
            "{type: json_object, schema}"
        )


class Lora(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=0)
    scale: float


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
    lora: list[Lora] | None = Field(None, description="adapters by id with their scales")


def serve_app(engine: BatchEngine) -> FastAPI:
    """The engine over HTTP: `POST /v1/chat/completions` (the subset agents use) and `/health`.

    Fields it does not know are refused with 422, not ignored: an agent that asks for a setting
    the server would not apply learns it at once.
    """
    app = FastAPI(title="OpenForager model server", docs_url=None, redoc_url=None)
    _add_health_route(app, engine)
    _add_listing_routes(app, engine)
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


def _add_listing_routes(app: FastAPI, engine: BatchEngine) -> None:
    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": engine.name, "object": "model"}]}

    @app.get("/lora-adapters")
    def adapters() -> list[dict[str, Any]]:
        if engine.adapter_path is None:
            return []
        return [{"id": 0, "path": str(engine.adapter_path), "scale": 1.0}]


def _check_lora(engine: BatchEngine, asked: list[Lora] | None) -> None:
    """This engine applies its one adapter to every request: any other mix is refused."""
    if asked is None:
        return
    held = {0: 1.0} if engine.adapter_path is not None else {}
    if {a.id: a.scale for a in asked} != held:
        raise HTTPException(
            422,
            f"this server applies {engine.adapter or 'no adapter'} to every request; adapters "
            "chosen per request need forager model serve --engine llama-server",
        )


def _add_chat_route(app: FastAPI, engine: BatchEngine) -> None:
    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict[str, Any]:
        if req.model not in (None, engine.name):
            raise HTTPException(404, f"model {req.model!r} is not served here ({engine.name})")
        _check_lora(engine, req.lora)
        try:
            done = engine.complete(
                [m.model_dump() for m in req.messages],
                schema=req.response_format.schema_(),
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
            # new_tokens is ours: from the first token that differs from the prompt this
            # client (`user`) sent before
            "prompt_tokens_details": {
                "cached_tokens": done.cached_tokens,
                "new_tokens": done.new_tokens,
            },
        },
        "timings": {"queued_s": round(done.queued_s, 4), "latency_s": round(done.latency_s, 4)},
    }
