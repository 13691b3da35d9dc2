"""The lines castore adds to pytest's terminal summary."""

from __future__ import annotations

import os
from typing import Final

from castore._session import CastoreSession, truthy

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


def report_lines(session: CastoreSession) -> list[str]:
    usage = session.usage
    if not usage.used and not session.judged:
        return []
    try:
        store = session.root.relative_to(session.config.rootpath)
    except ValueError:
        store = session.root
    mode = session.mode_for(None)
    lines = [f"store {store} (mode {mode.value}: {mode.description})"]
    if truthy(os.environ.get("CI")) and session.config.getini("castore_mode"):
        lines[0] += "; CI is set, so recording modes from ini files and markers are off"
    lines.append(
        f"{usage.hits} replayed, {usage.misses} missing or stale, {usage.recorded} recorded; "
        f"{format_duration(usage.saved_seconds)} of real calls avoided"
    )
    for namespace, key, reason in usage.missing:
        why = "no recording" if reason == "missing" else "stale"
        lines.append(f"  {why}: {namespace} :: {key}")
    unused = {ns: sorted(j.unused) for ns, j in session.judged.items() if j.unused}
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
    elif not session.judged and session.config.get_verbosity() > 0:
        lines.append("unused recordings: not judged (only part of the suite ran)")
    return lines
