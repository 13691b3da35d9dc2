"""A replayed urllib3 response hands its connection back to the pool, as a live one does:
requests and botocore read their answers with ``preload_content=False``, and a
connection kept by a replayed response made the pool build a new one for every request."""

from __future__ import annotations

from pathlib import Path

import requests

from castore import Recorder, Store
from castore.integrations.http import HttpRecorder
from tests.llm_server import LLMServer


def test_replayed_requests_reuse_the_pools_connection(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    server = LLMServer().start()
    url = f"{server.base_url}/models"
    try:
        with requests.Session() as session:
            recording = HttpRecorder(Recorder(store, "tests/test_pool", mode="all"))
            with recording.active():
                for _ in range(5):
                    session.get(url).raise_for_status()
    finally:
        server.stop()
    recorded = server.requests

    with requests.Session() as session:
        replaying = HttpRecorder(Recorder(store, "tests/test_pool", mode="none"))
        with replaying.active():
            answers = [session.get(url).json() for _ in range(5)]
        pools = session.get_adapter(url).poolmanager.pools
        keys = pools.keys()  # a copy: the container refuses iteration
        [pool] = [pools[key] for key in keys]
        made, idle = pool.num_connections, pool.pool.qsize()

    assert recorded == 5
    assert len({answer["id"] for answer in answers}) == 5  # the recorded answers, in order
    assert made == 1  # one connection object, never connected, taken and given back
    assert idle == pool.pool.maxsize
