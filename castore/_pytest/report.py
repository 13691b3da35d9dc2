"""The lines castore adds to pytest's terminal summary, from the session's plain data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from castore._pytest.usage import Usage
from castore._recording.modes import Mode
from castore._storage.last_run import Judgement

MAX_KEYS_SHOWN: Final = 8


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``6 min 12 s``, ``2 h 5 min``: what a person reads at a glance."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def report_lines(
    usage: Usage,
    judged: Mapping[str, Judgement],
    *,
    store: Path,
    mode: Mode,
    ci_overrides_ini: bool,
    verbose: bool,
) -> list[str]:
    """``ci_overrides_ini``: CI is set and the ini file names a mode, which CI ignores."""
    if not (
        usage.used
        or usage.hits
        or usage.recorded
        or judged
        or usage.fetched
        or usage.fetch_problems
        or usage.unrecorded_hosts
        or usage.refused
    ):
        return []
    lines = [f"store {store} (mode {mode.value}: {mode.description})"]
    for source in dict.fromkeys(item[3] for item in usage.fetched):
        fetched = [item for item in usage.fetched if item[3] == source]
        objects = sum(item[0] for item in fetched)
        size = sum(item[1] for item in fetched)
        seconds = sum(item[2] for item in fetched)
        lines.append(
            f"fetched {objects} objects ({megabytes(size)} MB) from {source} in {seconds:.1f} s"
        )
    lines.extend(usage.fetch_problems)
    if ci_overrides_ini:
        lines[0] += "; CI is set, so recording modes from ini files and markers are off"
    recorded = f"{usage.recorded} recorded"
    if usage.recorded:
        recorded += f" in {format_duration(usage.recorded_seconds)} of real calls"
    if usage.unchanged:
        recorded += f" ({usage.unchanged} unchanged but for volatile parts, kept as they were)"
    summary = f"{usage.hits} replayed, {usage.misses} missing or stale, {recorded}"
    if usage.hits or not usage.recorded:
        summary += f"; {format_duration(usage.saved_seconds)} of real calls avoided"
    lines.append(summary)
    if usage.missing:
        from castore._recording.staleness import Miss  # noqa: PLC0415 - only after a miss
    for namespace, key, miss, _ in usage.missing:
        # By value: a test that patched sys.modules may have made castore import the
        # module of Miss twice.
        why = "no recording" if miss == Miss.MISSING else "stale"
        lines.append(f"  {why}: {namespace} :: {key}")
    if verbose:
        for namespace, key, seconds in usage.recorded_keys[:MAX_KEYS_SHOWN]:
            lines.append(f"  recorded: {namespace} :: {key} ({format_duration(seconds)})")
        if len(usage.recorded_keys) > MAX_KEYS_SHOWN:
            lines.append(f"  … and {len(usage.recorded_keys) - MAX_KEYS_SHOWN} more recorded")
    lines.extend(_network_lines(usage))
    unused = {ns: sorted(j.unused) for ns, j in judged.items() if j.unused}
    if unused:
        total = sum(len(keys) for keys in unused.values())
        lines.append(
            f"{total} recording(s) that no test asked for, in {len(unused)} namespace(s); "
            f"`castore prune` drops them:"
        )
        for namespace, keys in unused.items():
            shown = ", ".join(keys[:MAX_KEYS_SHOWN])
            more = f" … and {len(keys) - MAX_KEYS_SHOWN} more" if len(keys) > MAX_KEYS_SHOWN else ""
            lines.append(f"  {namespace}: {shown}{more}")
    elif not judged and verbose:
        lines.append("unused recordings: not judged (only part of the suite ran)")
    return lines


def _network_lines(usage: Usage) -> list[str]:
    """Error answers recorded, calls made outside castore, connections the guard refused."""
    lines = []
    if usage.error_answers:
        count = len(usage.error_answers)
        answers = "answer" if count == 1 else "answers"
        lines.append(
            f"recorded {count} error {answers} (kept for tests of error handling; "
            f"commit them only if a test needs them):"
        )
        lines.extend(f"  {answer}" for answer in sorted(usage.error_answers)[:MAX_KEYS_SHOWN])
    for target, count in sorted(usage.unrecorded_hosts.items(), key=lambda item: -item[1]):
        calls = "call" if count == 1 else "calls"
        were = "was" if count == 1 else "were"
        lines.append(
            f"{count} {calls} to {target} {were} not recorded (made outside castore: a "
            "replay will not have them)"
        )
    if usage.refused:
        count = len(usage.refused)
        lines.append(
            f"the network guard refused {count} connection{'s' if count != 1 else ''} "
            f"(castore_allow_hosts lists the hosts tests may reach):"
        )
        lines.extend(f"  {refused}" for refused in usage.refused[:MAX_KEYS_SHOWN])
    return lines


def megabytes(size: int) -> str:
    """Bytes as MB, to 0.1 MB, or to three decimals under 0.1 MB: a fetch of a few
    frames cut from packs reads "0.012 MB", not "0.0 MB"."""
    return f"{size / 1e6:.1f}" if size >= 100_000 else f"{size / 1e6:.3f}"
