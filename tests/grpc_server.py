"""A loopback gRPC server over raw bytes (generic handlers, no generated code): the
service ``test.Chat`` answers as a model API would, with a fresh id per call, so a test
can tell a replay (the recorded id) from a live call.

* ``Complete`` (unary): ``answer:<request>|<id>``, with initial metadata (a secret
  ``authorization`` among it) and trailing metadata;
* ``Stream`` (server streaming): three chunks ``<request>-<n>|<id>``, ``delay`` apart;
* ``Refuse`` (unary): fails with ``NOT_FOUND``, an error answer worth recording.

``calls`` counts what reached the server: a replay must leave it unchanged. Run as
``python -m tests.grpc_server`` it prints its port and serves until killed.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

SERVICE = "test.Chat"
SECRET = "Bearer grpc-SECRET-token"


class ChatServer:
    def __init__(self, delay: float = 0.05, *, local_credentials: bool = False) -> None:
        self.delay = delay
        self.calls = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "Complete": grpc.unary_unary_rpc_method_handler(self._complete),
            "Stream": grpc.unary_stream_rpc_method_handler(self._stream),
            "Refuse": grpc.unary_unary_rpc_method_handler(self._refuse),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        address = "localhost:0" if local_credentials else "127.0.0.1:0"
        if local_credentials:  # as xai-sdk talks to a localhost: API host
            self.port = self._server.add_secure_port(address, grpc.local_server_credentials())
        else:
            self.port = self._server.add_insecure_port(address)
        host = "localhost" if local_credentials else "127.0.0.1"
        self.target = f"{host}:{self.port}"

    def start(self) -> ChatServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait()

    def _next_id(self) -> str:
        with self._lock:
            self.calls += 1
            return f"id-{next(self._ids)}"

    def _complete(self, request: bytes, context: Any) -> bytes:
        call_id = self._next_id()
        context.send_initial_metadata((("x-call-id", call_id), ("authorization", SECRET)))
        context.set_trailing_metadata((("x-tokens", str(len(request))),))
        return b"answer:" + request + b"|" + call_id.encode()

    def _stream(self, request: bytes, context: Any) -> Iterator[bytes]:
        call_id = self._next_id()
        for n in range(3):
            time.sleep(self.delay)
            yield f"{request.decode()}-{n}|{call_id}".encode()

    def _refuse(self, request: bytes, context: Any) -> bytes:
        self._next_id()
        context.abort(grpc.StatusCode.NOT_FOUND, f"no model named {request.decode()}")
        raise AssertionError("abort raises")


if __name__ == "__main__":
    running = ChatServer().start()
    print(running.port, flush=True)
    threading.Event().wait()
