"""Record and replay HTTP at the client: every request, whatever the client, no wrapping.

While an :class:`HttpRecorder` is active (the ``castore_http`` fixture or marker), every
request made through httpx, httpx2, aiohttp, requests, urllib3 or botocore (boto3), and
every unary or server-streaming grpcio call (``rpc``: status, metadata, messages), is
answered from a castore :class:`~castore.Recorder`, with its modes, ``RECORD_FIXTURES``,
CI behaviour and session report:

* **One neutral model** (``exchange``): an adapter per client (``clients/``) turns the
  client's request into an :class:`HttpRequest` and a recorded :class:`HttpAnswer` back
  into the client's own response; keys (``keys``), secrets, redaction, pacing (``pacing``)
  and the miss (``misses``) are written once for all of them.
* **The key** is the method and ``host/path`` plus a hash of the query (secret parameters
  left out), the body (JSON canonically) and allow-listed headers. Repeats replay in
  recorded order (``key``, ``key#2``…).
* **Secrets never reach the store.** Request headers are not stored at all; response
  headers in ``drop_headers`` and query parameters in ``drop_query`` are dropped before
  anything is written, and ``redact_body`` runs over every body kept.
* **Bodies are stored decoded**, chunk by chunk, and replay with the recorded chunk
  boundaries (an AWS event stream one event per chunk, decoded); ``pace=1.0`` also
  reproduces the recorded timing.
* **A miss is the client's own connection error** (and castore's
  ``MissingRecordingError``), so code that falls back when offline falls back.
"""

from castore.integrations.http.exchange import HttpAnswer, HttpRequest
from castore.integrations.http.keys import DEFAULT_DROP_QUERY, MATCH_PARTS
from castore.integrations.http.recorder import DEFAULT_DROP_HEADERS, HttpRecorder

__all__ = [
    "DEFAULT_DROP_HEADERS",
    "DEFAULT_DROP_QUERY",
    "MATCH_PARTS",
    "HttpAnswer",
    "HttpRecorder",
    "HttpRequest",
]
