"""A miss that the code under test caught still fails the test.

Code catches errors: litellm falls back when a fetch fails, an SDK retries then raises its
own error, a user writes ``except Exception: pass``. A replay that misses must not turn
into a pass that way. The listener notes every miss of the running test with the message
the code got; when the test's report is made, a phase that passed despite a miss is turned
into a failure that shows the message, and a phase that failed anyway gets the message as
a report section, so the reason is on screen whatever error the code raised instead.

``@pytest.mark.castore(allow_misses=True)`` marks a test that expects misses on purpose
(``pytest.raises(MissingRecordingError)``).
"""

from __future__ import annotations

from typing import Any, Final

SECTION: Final = "castore: missing or stale recordings this test asked for"


def describe(messages: list[str]) -> str:
    count = len(messages)
    lead = (
        "castore could not replay a recording this test asked for"
        if count == 1
        else f"castore could not replay {count} recordings this test asked for"
    )
    body = "\n\n".join(messages)
    return (
        f"{lead}; the code under test caught the error, so the test fails here:\n\n{body}\n\n"
        "(a test that expects the miss: @pytest.mark.castore(allow_misses=True))"
    )


def fail_report(report: Any, messages: list[str]) -> None:
    """Turn a passed phase into a failure that shows the misses; add to a failed one the
    misses its own error does not already show."""
    if report.passed:
        report.outcome = "failed"
        report.longrepr = describe(messages)
        return
    shown = str(report.longrepr or "")
    unseen = [message for message in messages if message.partition("\n")[0] not in shown]
    if unseen and not report.skipped:
        report.sections.append((SECTION, describe(unseen)))
