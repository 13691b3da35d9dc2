"""A real Git LFS server on loopback, for the tests and the benchmark: giftless in a child.

giftless needs the JWT provider listed before anonymous read-write access (its
pre-authorized upload actions are JWTs), and pyjwt below 2.10, whose later versions
reject those anonymous tokens: both are pinned in pyproject.toml's dev group.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVE = textwrap.dedent(
    """
    import os, sys
    os.environ["GIFTLESS_CONFIG_FILE"] = sys.argv[1]
    import warnings
    warnings.simplefilter("ignore")
    from giftless.app import init_app
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, init_app(), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()
    """
)

CONFIG = """\
AUTH_PROVIDERS:
  - factory: giftless.auth.jwt:factory
    options:
      algorithm: HS256
      private_key: castore-tests
  - giftless.auth.allow_anon:read_write
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: {storage}
"""


@contextmanager
def giftless(folder: Path) -> Iterator[str]:
    """Run giftless storing objects under ``folder``; yields the LFS URL of one repo."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "giftless.yaml"
    config.write_text(CONFIG.format(storage=folder / "objects"))
    with subprocess.Popen(  # leaving the block closes its pipes
        [sys.executable, "-c", SERVE, str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            port = server.stdout.readline().strip()
            if not port:
                raise RuntimeError(
                    f"giftless did not start: {server.stderr.read() if server.stderr else ''}"
                )
            yield f"http://127.0.0.1:{port}/castore/tests.git/info/lfs"
        finally:
            server.terminate()
            server.wait(timeout=10)


def stored_objects(folder: Path) -> list[Path]:
    return [path for path in (folder / "objects").rglob("*") if path.is_file()]
