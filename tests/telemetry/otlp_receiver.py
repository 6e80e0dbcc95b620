"""An in-process OTLP/HTTP receiver on loopback that decodes the real protobuf messages."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.loopback import LoopbackServer

_KINDS: dict[str, tuple[type[Message], type[Message]]] = {
    "/v1/traces": (
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}


class OtlpReceiver:
    """Collects every export request; `spans`, `metrics` and `logs` flatten them."""

    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = {path: [] for path in _KINDS}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kinds = _KINDS.get(self.path)
                if kinds is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                message = kinds[0]()
                message.ParseFromString(body)
                with receiver._lock:
                    receiver.requests[self.path].append(message)
                reply = kinds[1]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                return

        self.loopback = LoopbackServer(Handler)

    @property
    def endpoint(self) -> str:
        return self.loopback.url

    def _all(self, path: str) -> list[Any]:
        with self._lock:
            return list(self.requests[path])

    def spans(self) -> list[Any]:
        return [
            span
            for req in self._all("/v1/traces")
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def metrics(self) -> dict[str, Any]:
        """The latest data point set of each metric, by name."""
        found: dict[str, Any] = {}
        for req in self._all("/v1/metrics"):
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        found[metric.name] = metric
        return found

    def logs(self) -> list[Any]:
        return [
            record
            for req in self._all("/v1/logs")
            for rl in req.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]

    def resources(self) -> list[dict[str, Any]]:
        return [
            attributes(rs.resource.attributes)
            for req in self._all("/v1/traces")
            for rs in req.resource_spans
        ]

    def close(self) -> None:
        self.loopback.close()


def value(any_value: AnyValue) -> Any:
    """Decode an OTLP AnyValue into Python."""
    kind = any_value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    return None if kind is None else getattr(any_value, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}
