"""What one missing recording costs a test whose SDK retries: openai's client with its
default ``max_retries`` (2) and boto3's bedrock-runtime with its default retry mode,
replaying a request castore has no recording of, against the same clients sending to a
port where nothing listens (what the miss would cost if it were raised as a plain
connection error, which both SDKs retry with back-off).

    uv run python -m bench.miss_retries --rounds 7

castore raises the client's connection error on the first attempt (so fallbacks behave as
offline) and stops the SDK's retry of it with ``RetriedMissError``: one back-off wait
instead of two.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import tempfile
import time
from pathlib import Path

import boto3
import botocore.exceptions
import openai

from castore import Recorder
from castore.errors import RetriedMissError
from castore.integrations.http import HttpRecorder

MESSAGES = [{"role": "user", "content": "never recorded"}]


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def offline(port: int) -> float:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
    started = time.perf_counter()
    with contextlib.suppress(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    return time.perf_counter() - started


def castore_miss(root: Path, port: int) -> float:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
    started = time.perf_counter()
    http = HttpRecorder(Recorder(root, "bench/miss", mode="none"))
    with http.active(), contextlib.suppress(RetriedMissError):
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    return time.perf_counter() - started


def bedrock(port: int) -> object:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="secret",
    )


def boto_offline(port: int) -> float:
    client = bedrock(port)
    started = time.perf_counter()
    with contextlib.suppress(botocore.exceptions.EndpointConnectionError):
        client.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "x"}]}])  # type: ignore[attr-defined]
    return time.perf_counter() - started


def boto_castore_miss(root: Path, port: int) -> float:
    client = bedrock(port)
    started = time.perf_counter()
    http = HttpRecorder(Recorder(root, "bench/miss", mode="none"))
    with http.active(), contextlib.suppress(RetriedMissError):
        client.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "x"}]}])  # type: ignore[attr-defined]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    port = dead_port()
    times: dict[str, list[float]] = {
        "openai offline": [],
        "openai castore miss": [],
        "boto3 offline": [],
        "boto3 castore miss": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            times["openai offline"].append(offline(port))
            times["openai castore miss"].append(castore_miss(Path(folder), port))
            times["boto3 offline"].append(boto_offline(port))
            times["boto3 castore miss"].append(boto_castore_miss(Path(folder), port))
    for name, values in times.items():
        print(
            f"{name:20} median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f}, {rounds} rounds)"
        )


if __name__ == "__main__":
    main()
