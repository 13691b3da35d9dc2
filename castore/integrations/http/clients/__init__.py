"""One small adapter per HTTP client, as VCR.py has its ``stubs/``.

Each adapter replaces the one method where its client hands a request to the network,
turns the request into castore's neutral :class:`~castore.integrations.http.exchange.HttpRequest`,
and turns a recorded answer back into the client's own response object:

* ``httpx``: httpx and httpx2 (``Client``/``AsyncClient._send_single_request``);
* ``aiohttp``: ``ClientSession`` (a castore middleware, innermost);
* ``urllib3``: ``HTTPConnectionPool._make_request``, which requests and botocore (boto3)
  send through as well;
* ``grpc``: grpcio's unary and server-streaming multicallables, sync and ``grpc.aio``
  (``grpc_calls`` holds the replayed call objects; the answer is an ``RpcAnswer``).
"""
