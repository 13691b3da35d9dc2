"""The parts of an answer that change on every call, and what "the same answer" means.

Re-recording an answer whose only differences are volatile (a ``date`` header, a request
id, chunk times, the ``id`` and ``created`` an API mints per call) changes nothing: the
recorder keeps the recording it has (``Recorder._unchanged``), so no blob is written, no
pack churns, nothing goes to LFS and ``castore diff`` has nothing to show. The replay then
gives back the ids of the first recording, ``_request_id`` included.

The parts are read on the readable view of a value (``answer_views``). The defaults:

* **headers** (HTTP and gRPC metadata): ``date``, ``age``, ``expires``, request and trace
  ids (``x-request-id``, ``request-id``, ``cf-ray``, ``x-amzn-requestid``,
  ``x-amz-request-id``, ``x-amzn-trace-id``, ``apim-request-id``, ``x-ms-request-id``…),
  processing times (``openai-processing-ms``, ``x-envoy-upstream-service-time``,
  ``server-timing``…), and rate-limit counters (``x-ratelimit-*``,
  ``anthropic-ratelimit-*``, ``retry-after``);
* **times**: every chunk's and message's arrival time;
* **OpenAI** objects (``"object": "chat.completion"``, ``"chat.completion.chunk"``,
  ``"text_completion"``, ``"response"``…), at any depth, so in every stream chunk:
  ``id``, ``created``, ``created_at``, ``system_fingerprint``, ``obfuscation``;
* **Anthropic** messages (``"type": "message"``, also inside ``message_start``): ``id``;
* **tool calls** (``"type": "function"``, ``"tool_use"``, ``"server_tool_use"``): ``id``;
* **Gemini** answers (with ``responseId``): ``responseId``, ``createTime``;
* **Bedrock** events: the padding ``p`` and ``latencyMs``;
* an SDK object's private ``_request_id``.

More are named with JSON paths (``castore_volatile`` in the pytest configuration, the
recorder's ``volatile=``), in ``castore diff --ignore``'s syntax: ``headers.x-trace``,
``$..trace_id``, ``$.body.meta.generated_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from castore._recording.answer_views import readable
from castore._recording.json_paths import Step, parse_pattern
from castore._storage.public_names import present_as_public

VOLATILE_HEADERS: Final = frozenset(
    {
        "date",
        "age",
        "expires",
        "last-modified",
        "etag",
        "x-request-id",
        "request-id",
        "x-amzn-requestid",
        "x-amz-request-id",
        "x-amz-id-2",
        "x-amzn-trace-id",
        "x-amz-cf-id",
        "cf-ray",
        "apim-request-id",
        "x-ms-request-id",
        "x-ms-client-request-id",
        "x-goog-request-id",
        "x-cloud-trace-context",
        "traceparent",
        "x-trace-id",
        "x-correlation-id",
        "x-kong-request-id",
        "openai-processing-ms",
        "x-envoy-upstream-service-time",
        "x-envoy-decorator-operation",
        "server-timing",
        "x-process-time",
        "x-processing-time",
        "x-response-time",
        "req-cost-time",
        "x-kong-upstream-latency",
        "x-kong-proxy-latency",
        "retry-after",
        "retry-after-ms",
        "set-cookie",
    }
)
VOLATILE_HEADER_PREFIXES: Final = ("x-ratelimit-", "anthropic-ratelimit-", "x-ms-ratelimit-")
#: OpenAI's object kinds, whose per-call fields are volatile wherever they appear.
OPENAI_OBJECTS: Final = frozenset(
    {
        "chat.completion",
        "chat.completion.chunk",
        "text_completion",
        "response",
        "realtime.response",
        "thread.run",
        "thread.message",
        "batch",
        "fine_tuning.job",
    }
)
OPENAI_FIELDS: Final = ("id", "created", "created_at", "system_fingerprint", "obfuscation")
TOOL_CALLS: Final = frozenset({"function", "tool_use", "server_tool_use", "tool_call"})
GEMINI_FIELDS: Final = ("responseId", "createTime")
#: Fields volatile wherever they are: Bedrock's padding and latency, an SDK's request id.
ANYWHERE: Final = frozenset({"p", "latencyMs", "_request_id"})
#: ``p`` is Bedrock's padding only inside an event stream's payload.
_PADDING: Final = "p"


class Volatility:
    """Which parts of a value change on every call (see the module's docstring)."""

    def __init__(self, patterns: Iterable[str] = (), *, defaults: bool = True) -> None:
        self.patterns = tuple(parse_pattern(pattern) for pattern in patterns)
        self.defaults = defaults

    def __repr__(self) -> str:
        named = [pattern.text for pattern in self.patterns]
        return f"Volatility({named!r}, defaults={self.defaults})"

    def stripped(self, value: Any) -> Any:
        """``value``'s readable view with every volatile part left out."""
        view = readable(value)
        stripped = self._strip(view, (), in_events=False)
        if view is not value and isinstance(stripped, dict) and self.defaults:
            stripped.pop("times", None)  # an answer's chunk times: never the same twice
        return stripped

    def same(self, old: Any, new: Any) -> bool:
        """True when ``old`` and ``new`` differ in volatile parts only."""
        return bool(self.stripped(old) == self.stripped(new))

    def _strip(self, value: Any, path: tuple[Step, ...], *, in_events: bool) -> Any:
        if isinstance(value, Mapping):
            return self._strip_members(value, path, in_events=in_events)
        if isinstance(value, list | tuple):
            return [
                self._strip(item, (*path, number), in_events=in_events)
                for number, item in enumerate(value)
            ]
        return value

    def _strip_members(
        self, value: Mapping[str, Any], path: tuple[Step, ...], *, in_events: bool
    ) -> dict[str, Any]:
        dropped = self._dropped(value, path, in_events=in_events) if self.defaults else set()
        kept: dict[str, Any] = {}
        for name, member in value.items():
            where = (*path, name)
            if name in dropped or self._named(where):
                continue
            events = in_events or name == "payload"
            kept[name] = self._strip(member, where, in_events=events)
        return kept

    def _named(self, path: Sequence[Step]) -> bool:
        return any(pattern.covers(path) for pattern in self.patterns)

    @staticmethod
    def _dropped(value: Mapping[str, Any], path: tuple[Step, ...], *, in_events: bool) -> set[str]:
        """The default volatile members of one object (see the module's docstring)."""
        if path[-1:] in (("headers",), ("initial_metadata",), ("trailing_metadata",)):
            return {
                name
                for name in value
                if name in VOLATILE_HEADERS or name.startswith(VOLATILE_HEADER_PREFIXES)
            }
        dropped = {name for name in ANYWHERE if name in value and name != _PADDING}
        if in_events and _PADDING in value:
            dropped.add(_PADDING)
        kind = value.get("object")
        if isinstance(kind, str) and kind in OPENAI_OBJECTS:
            dropped.update(OPENAI_FIELDS)
        shape = value.get("type")
        if shape == "message" or (isinstance(shape, str) and shape in TOOL_CALLS):
            dropped.add("id")
        if "responseId" in value:
            dropped.update(GEMINI_FIELDS)
        return dropped


#: The rules a recorder uses when it is given none.
DEFAULT: Final = Volatility()


present_as_public(Volatility)
