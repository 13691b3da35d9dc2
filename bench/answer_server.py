"""A loopback server that answers LLM API requests with recorded answers, in a child process.

``bench.clients`` records every client's calls against it, once with castore and once
with VCR.py, and times live calls to it. It serves what it is given (``Answer`` objects,
written by the parent to a msgpack file): the OpenAI chat completions route (JSON, or
server-sent events when the request asks for a stream) and Bedrock's ``converse`` and
``converse-stream`` routes. A request gets the answer recorded for its ``messages``, so
every client, whatever JSON it writes, gets the same answer to the same prompt. A
streamed answer goes out one HTTP chunk per event, as the real services send them.

It runs in its own process so that its work never holds the measuring process's GIL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgpack

#: Response headers the server writes itself (the body's framing), never taken from an answer.
FRAMING_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection"}
)


@dataclass
class Answer:
    """One recorded answer: status, headers and the body as the chunks it is sent in."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    chunks: list[bytes] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def streamed(self) -> bool:
        return len(self.chunks) > 1

    def to_value(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "headers": [list(pair) for pair in self.headers],
            "chunks": self.chunks,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Answer:
        headers = [(str(name), str(text)) for name, text in value["headers"]]
        return cls(value["status"], value["reason"], headers, list(value["chunks"]))


def route_kind(path: str, body: dict[str, Any]) -> str:
    """Which answers a request's route takes: ``chat``, ``chat-stream``, ``converse`` or
    ``converse-stream``."""
    path = path.split("?", 1)[0]
    if path.endswith("/converse-stream"):
        return "converse-stream"
    if path.endswith("/converse"):
        return "converse"
    return "chat-stream" if body.get("stream") else "chat"


def prompt_key(body: dict[str, Any]) -> str:
    """What picks a request's answer: its messages, whatever the JSON around them."""
    return json.dumps(body.get("messages"), sort_keys=True)


Answers = dict[str, dict[str, Answer]]
"""Route kind -> prompt key -> answer."""


def _handler_for(answers: Answers, counter: list[int]) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, Nagle's algorithm
        # and the client's delayed ACK hold every answer back for 40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # the parent asks how many calls reached the server
            data = str(counter[0]).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                counter[0] += 1
            kind = route_kind(self.path, body)
            answer = answers.get(kind, {}).get(prompt_key(body))
            if answer is None:
                message = f"no {kind} answer for these messages".encode()
                self.send_response(404)
                self.send_header("content-length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            self.send_response(answer.status, answer.reason)
            for name, value in answer.headers:
                if name.lower() not in FRAMING_HEADERS:
                    self.send_header(name, value)
            if answer.streamed:
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for chunk in answer.chunks:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

    return Handler


def write_answers(answers: Answers, path: Path) -> None:
    document = {
        kind: {key: answer.to_value() for key, answer in table.items()}
        for kind, table in answers.items()
    }
    path.write_bytes(msgpack.packb(document))


def read_answers(path: Path) -> Answers:
    document = msgpack.unpackb(path.read_bytes())
    return {
        kind: {key: Answer.from_value(value) for key, value in table.items()}
        for kind, table in document.items()
    }


@dataclass
class RunningServer:
    base_url: str
    process: subprocess.Popen[str]

    def calls(self) -> int:
        """How many POSTs reached the server so far (a replay must not add any)."""
        with urllib.request.urlopen(self.base_url + "/calls") as reply:
            return int(reply.read())


@contextmanager
def serving(answers: Answers, folder: Path) -> Iterator[RunningServer]:
    """The server in a child process, on 127.0.0.1 and an ephemeral port."""
    path = folder / "answers.msgpack"
    write_answers(answers, path)
    with subprocess.Popen(  # leaving the block closes its pipe
        [sys.executable, "-m", "bench.answer_server", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if not line:
                raise RuntimeError("the answer server did not start")
            yield RunningServer(line, process)
        finally:
            process.terminate()
            process.wait(timeout=10)


def main() -> None:
    answers = read_answers(Path(sys.argv[1]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(answers, [0]))
    host, port = server.server_address[:2]
    print(f"http://{host!s}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
