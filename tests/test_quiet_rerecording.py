"""Re-recording is quiet: an answer that differs only in the parts an API mints per call
changes nothing, and a changed request reads as one change.

A real-SDK HTTP suite (openai and anthropic, JSON and streams) is recorded in a git
repository whose blobs go to a real LFS server (giftless, on loopback), against a server
whose answers carry a fresh ``date``, request ids, body ids, ``created`` stamps, system
fingerprints, stream padding and timings on every call. Re-recorded, the store is as it
was: no new blob, nothing to upload, nothing for ``castore diff`` to show, and the replay
gives back the first recording's ``_request_id``. Then one prompt is edited: ``castore
diff`` shows it as one "request changed" entry, with the two prompts and the two answers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli, commit_all, git, push_to_bare, use_git_home

from bench.lfs_server import giftless, stored_objects
from tests.llm_server import LLMServer

SUITE = """
import json
import os
from pathlib import Path

import anthropic
import openai
import pytest

pytestmark = pytest.mark.castore_http
BASE_URL = os.environ["LLM_BASE_URL"]
SEEN = Path(os.environ["SEEN_FILE"])


def seen(name, value):
    found = json.loads(SEEN.read_text()) if SEEN.exists() else {}
    found[name] = value
    SEEN.write_text(json.dumps(found))


def openai_client():
    return openai.OpenAI(base_url=BASE_URL + "/v1", api_key="sk-unused", max_retries=0)


def anthropic_client():
    return anthropic.Anthropic(base_url=BASE_URL, api_key="sk-unused", max_retries=0)


def test_openai_json():
    prompt = os.environ.get("EDITED_PROMPT", "the first prompt")
    completion = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    assert completion.choices[0].message.content == f"echo: {prompt}"
    seen("openai_json", completion._request_id)


def test_openai_stream():
    with openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream"}], stream=True
    ) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "echo: stream "


def test_anthropic_json():
    message = anthropic_client().messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "echo: hi"
    seen("anthropic_json", message._request_id)


def test_anthropic_stream():
    with anthropic_client().messages.stream(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "go"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "echo: go "
"""


def store_files(repo: Path) -> dict[str, bytes]:
    root = repo / "recordings"
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and ".castore" not in path.parts
    }


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")
@pytest.mark.usefixtures("clients_imported")
def test_rerecording_unchanged_answers_changes_nothing_and_a_changed_request_reads_as_one(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, git_home: Path
) -> None:
    use_git_home(git_home, monkeypatch)  # after pytester, which sets a HOME of its own
    repo = pytester.path
    git(repo, "init", "-q")
    pytester.makeini(
        "[pytest]\ncastore_root = recordings\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_llm=SUITE)
    server = LLMServer(gap=0.01, volatile=True).start()
    seen = tmp_path / "seen.json"
    monkeypatch.setenv("LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("SEEN_FILE", str(seen))

    def session(*args: str, record: bool = True) -> str:
        with monkeypatch.context() as env:
            if record:
                env.setenv("RECORD_FIXTURES", "true")
            result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
        assert result.ret == 0, result.stdout.str()
        return str(result.stdout.str())

    try:
        with giftless(tmp_path / "lfs") as url:
            cli("git", "setup", cwd=repo, check=True)
            (repo / ".lfsconfig").write_text(f'[lfs]\n\turl = "{url}"\n')
            session()
            recorded_ids = json.loads(seen.read_text())
            commit_all(repo, "record")
            push_to_bare(repo, tmp_path)
            uploaded = stored_objects(tmp_path / "lfs")
            assert uploaded, "the first recording's blobs went to LFS"
            before = store_files(repo)

            again = session()
            assert "4 recorded" in again
            assert "(4 unchanged but for volatile parts, kept as they were)" in again
            assert store_files(repo) == before  # no new blob, no index line changed
            assert git(repo, "status", "--porcelain").stdout == ""  # nothing to commit
            git(repo, "push", "-q", "origin", "main")
            assert stored_objects(tmp_path / "lfs") == uploaded  # 0 bytes more in LFS
            quiet = cli("diff", cwd=repo)
            assert quiet.returncode == 0, quiet.stdout
            assert "0 of 4 answer(s) changed, 0 added, 0 removed" in quiet.stdout

            session(record=False)
            assert json.loads(seen.read_text()) == recorded_ids  # _request_id as recorded

            monkeypatch.setenv("EDITED_PROMPT", "an edited prompt")
            session("-k", "openai_json")
            report = cli("diff", cwd=repo)
    finally:
        server.stop()
    assert report.returncode == 1
    lines = report.stdout.splitlines()
    heading = [line for line in lines if "request changed" in line]
    assert len(heading) == 1, report.stdout
    assert (
        "POST http://127.0.0.1/v1/chat/completions in test_llm.py::test_openai_json" in (heading[0])
    )
    text = report.stdout
    assert "test_llm: 1 changed (1 request(s)), 0 added, 0 removed, 4 unchanged" in text
    assert '"the first prompt" → "an edited prompt"' in text
    assert '"echo: the first prompt" → "echo: an edited prompt"' in text  # the two answers
    assert "0 added, 0 removed" in text
