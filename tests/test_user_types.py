"""Users' own objects: serializer pairs, dataclasses, pydantic models, and redaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest
import zstandard

from castore import Recorder, Store, redactor
from castore._storage.store import internals
from castore.errors import StaleRecordingError, UnreadableRecordingError

NAMESPACE = "ir_responses"


def must_not_be_called() -> object:
    raise AssertionError("replay called the generator")


class CustomObject:
    """The seeds' SerializableResponseRecorder case: to_dict / from_dict."""

    def __init__(self, name: str, score: float) -> None:
        self.name, self.score = name, score

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomObject:
        return cls(data["name"], data["score"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CustomObject) and other.to_dict() == self.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


def test_a_serializer_pair_round_trips_custom_objects(tmp_path: Path) -> None:
    options = {
        "serializer": lambda obj: {"type": type(obj).__name__, "data": obj.to_dict()},
        "deserializer": lambda data: CustomObject.from_dict(data["data"]),
    }
    live = Recorder(tmp_path, NAMESPACE, mode="new_episodes", **options)
    recorded = live.get_or_record_sync("custom", lambda: CustomObject("find_index", 0.9))

    replayed = Recorder(tmp_path, NAMESPACE, **options).get_or_record_sync(
        "custom", must_not_be_called
    )

    assert recorded == replayed == CustomObject("find_index", 0.9)
    assert Store(tmp_path).get(NAMESPACE, "custom") == {
        "type": "CustomObject",
        "data": {"name": "find_index", "score": 0.9},
    }


class Kind(enum.Enum):
    FUNCTION = "function"
    CLASS = "class"


@dataclasses.dataclass
class Parameter:
    name: str
    type_hint: str | None = None


@dataclasses.dataclass
class Signature:
    name: str
    parameters: list[Parameter]
    returns: str
    kind: Kind = Kind.FUNCTION


@dataclasses.dataclass
class IntermediateRepresentation:
    summary: str
    signature: Signature
    tags: tuple[str, ...] = ()
    extra: dict[str, Parameter] = dataclasses.field(default_factory=dict)
    created: dt.datetime | None = None


IR = IntermediateRepresentation(
    summary="Find the index of an element",
    signature=Signature(
        "find_index", [Parameter("xs", "list[int]"), Parameter("x")], returns="int"
    ),
    tags=("search", "list"),
    extra={"fallback": Parameter("default", "int")},
    created=dt.datetime(2025, 10, 22, 12, 0, tzinfo=dt.UTC),
)


def test_nested_dataclasses_round_trip_when_the_recorder_is_told_the_type(
    tmp_path: Path,
) -> None:
    Recorder(
        tmp_path, NAMESPACE, mode="new_episodes", type=IntermediateRepresentation
    ).get_or_record_sync("ir", lambda: IR)

    replayed = Recorder(tmp_path, NAMESPACE, type=IntermediateRepresentation).get_or_record_sync(
        "ir", must_not_be_called
    )

    assert replayed == IR
    assert isinstance(replayed.signature.parameters[0], Parameter)
    assert replayed.signature.kind is Kind.FUNCTION


def test_a_list_of_dataclasses_is_a_type_too(tmp_path: Path) -> None:
    values = [Parameter("a"), Parameter("b", "str")]
    Recorder(tmp_path, NAMESPACE, mode="new_episodes", type=list[Parameter]).get_or_record_sync(
        "many", lambda: values
    )
    assert (
        Recorder(tmp_path, NAMESPACE, type=list[Parameter]).get_or_record_sync(
            "many", must_not_be_called
        )
        == values
    )


class Usage(pydantic.BaseModel):
    prompt_tokens: int
    completion_tokens: int


class Choice(pydantic.BaseModel):
    index: int
    finish_reason: Literal["stop", "length"]
    text: str


class Completion(pydantic.BaseModel):
    id: str
    created: dt.datetime
    choices: list[Choice]
    usage: Usage
    model_config = pydantic.ConfigDict(extra="allow")


def completion() -> Completion:
    return Completion(
        id="cmpl-1",
        created=dt.datetime(2025, 10, 22, tzinfo=dt.UTC),
        choices=[Choice(index=0, finish_reason="stop", text="def find_index(): ...")],
        usage=Usage(prompt_tokens=12, completion_tokens=30),
        system_fingerprint="fp_123",
    )


def test_pydantic_models_round_trip_when_the_recorder_is_told_the_type(tmp_path: Path) -> None:
    Recorder(tmp_path, NAMESPACE, mode="new_episodes", type=Completion).get_or_record_sync(
        "completion", completion
    )

    replayed = Recorder(tmp_path, NAMESPACE, type=Completion).get_or_record_sync(
        "completion", must_not_be_called
    )

    assert replayed == completion()
    assert isinstance(replayed.created, dt.datetime)
    assert replayed.model_extra == {"system_fingerprint": "fp_123"}


async def test_a_stream_of_pydantic_chunks_replays_as_models(tmp_path: Path) -> None:
    async def stream():  # type: ignore[no-untyped-def]
        for number in range(3):
            yield Usage(prompt_tokens=number, completion_tokens=number)

    await Recorder(tmp_path, NAMESPACE, mode="new_episodes", type=Usage).get_or_record(
        "stream", stream
    )
    replayed = await Recorder(tmp_path, NAMESPACE, type=Usage).get_or_record(
        "stream", must_not_be_called
    )

    assert [chunk async for chunk in replayed] == [
        Usage(prompt_tokens=n, completion_tokens=n) for n in range(3)
    ]


@dataclasses.dataclass
class RenamedSignature:
    function_name: str  # was "name" when the recording was made
    parameters: list[Parameter]
    returns: str


def test_a_value_the_current_type_cannot_read_is_a_stale_recording(tmp_path: Path) -> None:
    Recorder(tmp_path, NAMESPACE, mode="new_episodes", type=Signature).get_or_record_sync(
        "sig", lambda: IR.signature
    )

    with pytest.raises(StaleRecordingError) as caught:
        Recorder(tmp_path, NAMESPACE, type=RenamedSignature).get_or_record_sync(
            "sig", must_not_be_called
        )

    message = str(caught.value)
    assert "'sig'" in message
    assert "RenamedSignature" in message
    assert "mode='new_episodes'" in message  # the way to re-record it


def test_new_episodes_re_records_a_recording_the_type_no_longer_reads(tmp_path: Path) -> None:
    """Issue 14, bug 1: new_episodes raised the same stale error instead of re-recording."""
    Recorder(tmp_path, NAMESPACE, mode="new_episodes", type=Signature).get_or_record_sync(
        "sig", lambda: IR.signature
    )
    renamed = RenamedSignature(function_name="find", parameters=[], returns="int")
    calls: list[str] = []

    def record_again() -> RenamedSignature:
        calls.append("called")
        return renamed

    got = Recorder(
        tmp_path, NAMESPACE, mode="new_episodes", type=RenamedSignature
    ).get_or_record_sync("sig", record_again)
    assert calls == ["called"]
    assert got == renamed
    replayed = Recorder(tmp_path, NAMESPACE, type=RenamedSignature).get_or_record_sync(
        "sig", must_not_be_called
    )
    assert replayed == renamed


def test_a_value_just_recorded_that_cannot_be_read_back_is_refused_and_not_stored(
    tmp_path: Path,
) -> None:
    """Issue 14, bug 2: a provider's answer the type rejects was stored, then called stale
    by every later run, with a hint to run the command that had just run."""
    recorder = Recorder(tmp_path, NAMESPACE, mode="all", deserializer=CustomObject.from_dict)
    with pytest.raises(UnreadableRecordingError) as caught:
        recorder.get_or_record_sync("odd", lambda: {"name": "x"})  # no "score": from_dict fails
    message = str(caught.value)
    assert "'odd'" in message and "cannot be read back" in message and "KeyError" in message
    assert "nothing was stored" in message
    assert "odd" not in Store(tmp_path).entries(NAMESPACE)


def test_a_pydantic_validation_failure_is_a_stale_recording(tmp_path: Path) -> None:
    Store(tmp_path).put(NAMESPACE, "completion", {"id": "cmpl-1", "choices": "not a list"})

    with pytest.raises(StaleRecordingError, match=r"'completion'.*Completion.*ValidationError"):
        Recorder(tmp_path, NAMESPACE, type=Completion).get_or_record_sync(
            "completion", must_not_be_called
        )


def test_a_failing_deserializer_is_a_stale_recording(tmp_path: Path) -> None:
    Store(tmp_path).put(NAMESPACE, "custom", {"old": "layout"})

    with pytest.raises(StaleRecordingError, match=r"'custom'.*KeyError"):
        Recorder(
            tmp_path, NAMESPACE, deserializer=lambda data: CustomObject.from_dict(data["data"])
        ).get_or_record_sync("custom", must_not_be_called)


def test_type_and_serializer_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="either type="):
        Recorder(tmp_path, NAMESPACE, type=Usage, serializer=str)


# --- redaction ---------------------------------------------------------------------------


def all_stored_text(root: Path) -> str:
    """Every index as text plus every blob decompressed: what would reach git."""
    parts = [path.read_text() for path in root.rglob("index/**/*.json")]
    decompressor = zstandard.ZstdDecompressor()
    parts += [
        decompressor.decompress(path.read_bytes()).decode("latin-1")
        for path in root.rglob("blobs/*/*.zst")
    ]
    return "\n".join(parts)


def test_redaction_scrubs_secrets_from_values_and_metadata_before_writing(tmp_path: Path) -> None:
    secret = "sk-live1234567890abcdef"
    scrub = redactor(keys=["authorization", "api_key"], patterns=[r"sk-[A-Za-z0-9]{16,}"])
    live = Recorder(tmp_path, NAMESPACE, mode="new_episodes", redact=scrub)

    value = live.get_or_record_sync(
        "call",
        lambda: {
            "request": {"headers": {"Authorization": f"Bearer {secret}"}},
            "echo": f"your key {secret} was accepted",
            "answer": 42,
        },
        metadata={"api_key": secret, "prompt": "hello"},
    )

    assert secret not in all_stored_text(tmp_path)
    assert value["request"]["headers"]["Authorization"] == "[REDACTED]"
    assert value["echo"] == "your key [REDACTED] was accepted"
    assert value["answer"] == 42
    entry = Store(tmp_path).entry(NAMESPACE, "call")
    assert entry is not None
    assert entry.metadata == {"api_key": "[REDACTED]", "prompt": "hello"}
    assert json.loads(
        internals(Store(tmp_path)).indexes.path(NAMESPACE).read_text()
    )  # still valid JSON


def test_type_can_be_given_per_call(tmp_path: Path) -> None:
    """Issue 14: `get_or_record(key, fn, type=ChatCompletion)`, not only per recorder."""
    plain = Recorder(tmp_path, NAMESPACE, mode="new_episodes")
    recorded = plain.get_or_record_sync("sig", lambda: IR.signature, type=Signature)
    assert recorded == IR.signature
    assert plain.get_or_record_sync("other", lambda: {"a": 1}) == {"a": 1}  # untyped still

    replaying = Recorder(tmp_path, NAMESPACE)
    assert replaying.get_or_record_sync("sig", must_not_be_called, type=Signature) == IR.signature
    assert isinstance(replaying.get_or_record_sync("sig", must_not_be_called), dict)
    with pytest.raises(StaleRecordingError, match="RenamedSignature"):
        replaying.get_or_record_sync("sig", must_not_be_called, type=RenamedSignature)


async def test_type_per_call_works_for_the_async_twin(tmp_path: Path) -> None:
    async def signature() -> Signature:
        return IR.signature

    recorder = Recorder(tmp_path, NAMESPACE, mode="new_episodes")
    assert await recorder.get_or_record("sig", signature, type=Signature) == IR.signature
    replayed = await Recorder(tmp_path, NAMESPACE).get_or_record(
        "sig", must_not_be_called, type=Signature
    )
    assert replayed == IR.signature


def test_a_model_or_dataclass_recorded_without_type_comes_back_as_itself(tmp_path: Path) -> None:
    """Issue 14: the first thing a newcomer writes, an untyped get_or_record of an SDK
    model, failed with UnencodableValueError."""
    live = Recorder(tmp_path, NAMESPACE, mode="new_episodes").get_or_record_sync(
        "sig", lambda: IR.signature
    )
    assert live == IR.signature
    made = completion()
    Recorder(tmp_path, NAMESPACE, mode="new_episodes").get_or_record_sync(
        "completion", lambda: made
    )
    replaying = Recorder(tmp_path, NAMESPACE)
    assert replaying.get_or_record_sync("sig", must_not_be_called) == IR.signature
    assert replaying.get_or_record_sync("completion", must_not_be_called) == made
    plain = Recorder(tmp_path, NAMESPACE, auto_type=False)
    assert isinstance(plain.get_or_record_sync("sig", must_not_be_called), dict)


def test_an_auto_typed_recording_never_makes_castore_import_a_module(tmp_path: Path) -> None:
    """The class path is data from a store file: only modules already imported are used."""
    Store(tmp_path).put(
        NAMESPACE, "planted", {"$castore_type": "antigravity:Anything", "value": {}}
    )
    with pytest.raises(StaleRecordingError, match="has not imported"):
        Recorder(tmp_path, NAMESPACE).get_or_record_sync("planted", must_not_be_called)
    assert "antigravity" not in sys.modules
