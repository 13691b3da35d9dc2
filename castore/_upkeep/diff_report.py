"""``castore diff``'s output: text for the terminal, ``--stat``, JSON and Markdown.

Text and Markdown list namespaces in order and, within each, the changed keys with the
largest share of changed text first, then the added and removed keys; a summary line
closes (text) or opens (Markdown, for a pull-request comment) the report. Long strings
show as a word diff (``[-old-]{+new+}``, coloured on a terminal) or a line diff, with
long unchanged stretches cut to their ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Final

from castore._recording.json_paths import format_path
from castore._upkeep.store_diff import EntryDiff, NamespaceDiff, StoreDiff
from castore._upkeep.value_diff import Change, TextDiff

#: Unchanged words kept on each side of a change in a word diff, lines in a line diff.
CONTEXT_WORDS: Final = 8
CONTEXT_LINES: Final = 2
#: A JSON value longer than this is cut in the text report.
SHORT_VALUE: Final = 100
#: Keys listed per namespace and section before "… and N more".
MAX_KEYS: Final = 50
#: How many of the largest changes the summary names.
TOP_CHANGES: Final = 5

Style = Callable[[str, str], str]
"""Colour a piece of text: ``style(text, "removed" | "added" | "heading" | "dim")``."""


def plain_style(text: str, _role: str) -> str:
    return text


def percent(share: float) -> str:
    value = share * 100
    if 0 < value < 1:
        return "<1%"
    return f"{value:.0f}%"


def counts(namespace: NamespaceDiff) -> str:
    requests = sum(entry.old_key is not None for entry in namespace.changed)
    parts = [
        f"{len(namespace.changed)} changed" + (f" ({requests} request(s))" if requests else ""),
        f"{len(namespace.added)} added",
        f"{len(namespace.removed)} removed",
        f"{namespace.unchanged} unchanged",
    ]
    if namespace.rerecorded:
        parts[-1] += f" ({namespace.rerecorded} re-recorded, no change outside the ignored paths)"
    return ", ".join(parts)


def summary(diff: StoreDiff) -> str:
    changed = diff.count("changed")
    compared = changed + diff.unchanged
    text = f"{changed} of {compared} answer(s) changed"
    if changed:
        text += f" ({percent(diff.share)} of their text)"
    text += f", {diff.count('added')} added, {diff.count('removed')} removed"
    if diff.rerecorded:
        text += f"; {diff.rerecorded} re-recorded with no change outside the ignored paths"
    return text


# --- text ---------------------------------------------------------------------------


def render_text(diff: StoreDiff, style: Style = plain_style) -> str:
    lines = [style(f"castore diff: {diff.old_label} → {diff.new_label}", "heading")]
    if diff.ignore:
        lines.append(style(f"ignoring {', '.join(diff.ignore)}", "dim"))
    for namespace in diff.namespaces:
        if not namespace.has_changes:
            continue
        lines.append("")
        lines.append(style(f"{namespace.namespace}: {counts(namespace)}", "heading"))
        for entry in _capped(_by_share(namespace.changed), lines, "changed"):
            lines.extend(_entry_text(entry, style))
        for entry in _capped(namespace.added, lines, "added"):
            lines.append(style(f"  + {entry.key}", "added"))
        for entry in _capped(namespace.removed, lines, "removed"):
            lines.append(style(f"  - {entry.key}", "removed"))
    lines.append("")
    lines.append(summary(diff))
    largest = [entry for entry in diff.largest_changes() if entry.share > 0][:TOP_CHANGES]
    if len(largest) > 1:
        named = ", ".join(f"{e.namespace} {e.key} ({percent(e.share)})" for e in largest)
        lines.append(f"largest changes: {named}")
    return "\n".join(lines) + "\n"


def render_stat(diff: StoreDiff) -> str:
    rows = [namespace for namespace in diff.namespaces if namespace.has_changes]
    width = max((len(namespace.namespace) for namespace in rows), default=0)
    lines = []
    for namespace in rows:
        text = f" {namespace.namespace.ljust(width)} | {counts(namespace)}"
        if namespace.changed:
            text += f"; {percent(namespace.share)} of the text changed"
        lines.append(text)
    lines.append(" " + summary(diff))
    return "\n".join(lines) + "\n"


def _by_share(entries: list[EntryDiff]) -> list[EntryDiff]:
    return sorted(entries, key=lambda entry: (-entry.share, entry.key))


def _capped(entries: list[EntryDiff], lines: list[str], what: str) -> Iterator[EntryDiff]:
    yield from entries[:MAX_KEYS]
    if len(entries) > MAX_KEYS:
        lines.append(f"  … and {len(entries) - MAX_KEYS} more {what} (see --json)")


def _entry_text(entry: EntryDiff, style: Style) -> list[str]:
    share = f"  ({percent(entry.share)} of its text)" if entry.value and entry.value.words else ""
    if entry.old_key is not None:
        return _request_text(entry, style, share)
    lines = [style(f"  ~ {entry.key}", "heading") + share]
    if entry.problem:
        lines.append(f"      value not compared: {entry.problem}")
    if entry.value is not None:
        for change in entry.value.changes:
            lines.extend(_change_text(change, style))
    noted = [change for change in entry.metadata if change.path[0] in {"recorded_at", "duration"}]
    for change in entry.metadata:
        if change not in noted:
            lines.extend(_change_text(change, style, metadata=True))
    if noted:
        text = "; ".join(f"{c.path[0]} {_short(c.old)} → {_short(c.new)}" for c in noted)
        lines.append(style(f"      {text}", "dim"))
    return lines


def _request_text(entry: EntryDiff, style: Style, share: str) -> list[str]:
    """A changed request: one entry, its request's diff, then its answer's."""
    slot = entry.new.metadata if entry.new is not None else {}
    where = f"{slot.get('method', '')} {slot.get('url', '')}".strip()
    test = f" in {slot['test']}" if slot.get("test") else ""
    lines = [style(f"  ~ request changed: {where}{test}", "heading") + share]
    lines.append(style(f"      key {entry.old_key} → {entry.key}", "dim"))
    lines.append("    request:")
    for change in entry.request:
        lines.extend(_change_text(change, style, where=_request_field(change)))
    lines.append("    answer:" + ("" if entry.value and entry.value.changes else " unchanged"))
    if entry.problem:
        lines.append(f"      not compared: {entry.problem}")
    for change in entry.value.changes if entry.value else []:
        lines.extend(_change_text(change, style))
    return lines


def _request_field(change: Change) -> str:
    """A request's change named by its own field (``body.messages[0].content``), not as
    the index's metadata member it is kept in."""
    return str(change.path[-1])


def _where(change: Change, metadata: bool) -> str:
    if metadata:
        return ".".join(str(step) for step in change.path)
    if change.path and isinstance(change.path[0], str) and change.path[0].startswith("("):
        return f"stream {change.path[0][1:-1]}"
    return format_path(change.path)


def _change_text(
    change: Change, style: Style, *, metadata: bool = False, where: str | None = None
) -> list[str]:
    where = where if where is not None else _where(change, metadata)
    if change.kind == "added":
        return [f"      {where}: " + style(f"added {_short(change.new)}", "added")]
    if change.kind == "removed":
        return [f"      {where}: " + style(f"removed {_short(change.old)}", "removed")]
    if change.text is None:
        old, new = style(_short(change.old), "removed"), style(_short(change.new), "added")
        return [f"      {where}: {old} → {new}"]
    lines = [f"      {where}:"]
    if change.text.unit == "words":
        lines.append("        " + _word_diff(change.text, style))
    else:
        lines.extend(f"        {line}" for line in _line_diff(change.text, style))
    return lines


def _word_diff(text: TextDiff, style: Style) -> str:
    out = []
    last = len(text.pieces) - 1
    for position, (tag, run) in enumerate(text.pieces):
        flat = run.replace("\n", "⏎")
        if tag == "=":
            out.append(_trim_words(flat, first=position == 0, final=position == last))
        elif tag == "-":
            out.append(style(f"[-{flat}-]", "removed"))
        else:
            out.append(style(f"{{+{flat}+}}", "added"))
    return "".join(out)


def _trim_words(run: str, *, first: bool, final: bool) -> str:
    words = run.split(" ")
    keep = CONTEXT_WORDS
    if first and len(words) > keep:
        return "… " + " ".join(words[-keep:])
    if final and len(words) > keep:
        return " ".join(words[:keep]) + " …"
    if len(words) > 2 * keep:
        return " ".join(words[:keep]) + " … " + " ".join(words[-keep:])
    return run


def _line_diff(text: TextDiff, style: Style) -> list[str]:
    lines: list[str] = []
    last = len(text.pieces) - 1
    for position, (tag, run) in enumerate(text.pieces):
        runs = run.splitlines()
        if tag == "=":
            keep = CONTEXT_LINES
            head = [] if position == 0 else runs[:keep]
            tail = [] if position == last else runs[-keep:]
            if len(runs) > len(head) + len(tail):
                shown = [*head, "…", *tail] if head or tail else ["…"]
            else:
                shown = runs
            lines.extend(f"  {line}" for line in shown)
        else:
            marker, role = ("-", "removed") if tag == "-" else ("+", "added")
            lines.extend(style(f"{marker} {line}", role) for line in runs)
    return lines


def _short(value: Any, limit: int = SHORT_VALUE) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- JSON ---------------------------------------------------------------------------


def render_json(diff: StoreDiff) -> dict[str, Any]:
    return {
        "old": diff.old_label,
        "new": diff.new_label,
        "ignore": diff.ignore,
        "changed": diff.count("changed"),
        "added": diff.count("added"),
        "removed": diff.count("removed"),
        "unchanged": diff.unchanged,
        "rerecorded": diff.rerecorded,
        "text_changed": round(diff.share, 4),
        "namespaces": [_namespace_json(namespace) for namespace in diff.namespaces],
    }


def _namespace_json(namespace: NamespaceDiff) -> dict[str, Any]:
    return {
        "namespace": namespace.namespace,
        "changed": [_entry_json(entry) for entry in _by_share(namespace.changed)],
        "added": [entry.key for entry in namespace.added],
        "removed": [entry.key for entry in namespace.removed],
        "unchanged": namespace.unchanged,
        "rerecorded": namespace.rerecorded,
        "text_changed": round(namespace.share, 4),
    }


def _entry_json(entry: EntryDiff) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": entry.key,
        **(
            {
                "request_changed": True,
                "old_key": entry.old_key,
                "request": [
                    {**_change_json(change), "path": _request_field(change)}
                    for change in entry.request
                ],
            }
            if entry.old_key is not None
            else {}
        ),
        "old_blob": entry.old.blob if entry.old else None,
        "new_blob": entry.new.blob if entry.new else None,
        "text_changed": round(entry.share, 4),
        "changes": [_change_json(c) for c in (entry.value.changes if entry.value else [])],
        "metadata": [_change_json(change, metadata=True) for change in entry.metadata],
    }
    if entry.problem:
        data["problem"] = entry.problem
    return data


def _change_json(change: Change, *, metadata: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"path": _where(change, metadata), "kind": change.kind}
    if change.kind != "added":
        data["old"] = change.old
    if change.kind != "removed":
        data["new"] = change.new
    if change.text is not None:
        data["text_diff"] = [[tag, run] for tag, run in change.text.pieces]
    return data


# --- Markdown -----------------------------------------------------------------------


def render_markdown(diff: StoreDiff) -> str:
    lines = [f"## castore diff: `{diff.old_label}` → `{diff.new_label}`", ""]
    lines.append(summary(diff) + ".")
    if diff.ignore:
        lines.append("")
        lines.append("Ignoring " + ", ".join(f"`{pattern}`" for pattern in diff.ignore) + ".")
    largest = [entry for entry in diff.largest_changes() if entry.share > 0][:TOP_CHANGES]
    if largest:
        lines += ["", "Largest changes:", ""]
        lines += [f"- `{e.namespace}` `{e.key}`: {percent(e.share)}" for e in largest]
    rows = [namespace for namespace in diff.namespaces if namespace.has_changes]
    if rows:
        lines += [
            "",
            "| namespace | changed | added | removed | unchanged | text changed |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for namespace in rows:
            lines.append(
                f"| `{namespace.namespace}` | {len(namespace.changed)} | {len(namespace.added)}"
                f" | {len(namespace.removed)} | {namespace.unchanged}"
                f" | {percent(namespace.share) if namespace.changed else '–'} |"
            )
    for namespace in rows:
        lines += [
            "",
            "<details>",
            f"<summary><code>{namespace.namespace}</code>: {counts(namespace)}</summary>",
            "",
        ]
        for entry in _by_share(namespace.changed)[:MAX_KEYS]:
            lines.extend(_entry_markdown(entry))
        if namespace.added:
            lines.append("Added: " + ", ".join(f"`{e.key}`" for e in namespace.added[:MAX_KEYS]))
            lines.append("")
        if namespace.removed:
            removed = ", ".join(f"`{e.key}`" for e in namespace.removed[:MAX_KEYS])
            lines.append("Removed: " + removed)
            lines.append("")
        lines.append("</details>")
    return "\n".join(lines) + "\n"


def _entry_markdown(entry: EntryDiff) -> list[str]:
    share = f" ({percent(entry.share)} of its text)" if entry.value and entry.value.words else ""
    lines = [f"#### `{entry.key}`{share}", ""]
    if entry.old_key is not None:
        lines = [f"#### request changed: `{entry.old_key}` → `{entry.key}`{share}", ""]
        for change in entry.request:
            shown = f"{_code(_short(change.old))} → {_code(_short(change.new))}"
            lines.append(f"- request `{_request_field(change)}`: {shown}")
        lines.append("")
    if entry.problem:
        lines += [f"Value not compared: {entry.problem}", ""]
    changes = list(entry.value.changes if entry.value else [])
    for change in changes:
        where = _where(change, metadata=False)
        if change.text is not None:
            lines += [f"- `{where}`", "", "  ```diff"]
            if change.text.unit == "lines":
                lines += [f"  {line}" for line in _line_diff(change.text, plain_style)]
            else:
                lines += [f"  - {line}" for line in str(change.old).splitlines()]
                lines += [f"  + {line}" for line in str(change.new).splitlines()]
            lines += ["  ```", ""]
        elif change.kind == "changed":
            lines.append(f"- `{where}`: {_code(_short(change.old))} → {_code(_short(change.new))}")
        else:
            shown = change.new if change.kind == "added" else change.old
            lines.append(f"- `{where}`: {change.kind} {_code(_short(shown))}")
    for change in entry.metadata:
        old, new = _code(_short(change.old)), _code(_short(change.new))
        lines.append(f"- {_where(change, metadata=True)}: {old} → {new}")
    lines.append("")
    return lines


def _code(text: str) -> str:
    """Inline code that survives backticks in the value (Markdown's doubled fence)."""
    if "`" not in text:
        return f"`{text}`"
    return f"`` {text.replace('``', '` `')} ``"
