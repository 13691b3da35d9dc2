"""Turning results into the tables and target verdicts of docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

PEERS = ("vcr", "seeds")
NAMES = {"castore": "castore", "vcr": "VCR.py", "seeds": "seeds' JSON", "floor": "in memory"}


def kib(value: float) -> str:
    if value >= 10 * 1024 * 1024:
        return f"{value / 1024 / 1024:,.1f} MiB"
    return f"{value / 1024:,.0f} KiB"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.1f} ms"


def micro(value: float) -> str:
    return f"{value * 1e6:,.1f} µs" if value < 1e-3 else f"{value * 1e3:,.2f} ms"


def spread(stat: dict[str, Any], unit: Any) -> str:
    if stat["min"] == stat["max"]:
        return str(unit(stat["median"]))
    return f"{unit(stat['median'])} ({unit(stat['min'])}–{unit(stat['max'])})"


def ratio(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.3f}×" if theirs else "n/a"


def scale_tables(result: dict[str, Any]) -> list[str]:
    factor = result["scale"]
    lines = [
        f"### {factor}× the corpus: {result['tests']:,} test modules, "
        f"{result['lookups']:,} lookups ({result['repeat']} pytest runs per suite, "
        f"{max(result['repeat'], 5)} of castore and in memory, "
        f"{result['seconds'] / 60:.1f} min)",
        "",
        "| measure | castore | VCR.py | seeds' JSON | castore ÷ VCR.py | castore ÷ seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    size = result["footprint"]
    rows = [
        ("fixture bytes (files)", "bytes", kib),
        ("fixture bytes allocated on disk", "allocated", kib),
        ("files", "files", lambda v: f"{v:,}"),
    ]
    for label, field, unit in rows:
        values = {a: size[a][field] for a in ("castore", *PEERS)}
        lines.append(
            f"| {label} | {unit(values['castore'])} | {unit(values['vcr'])} | "
            f"{unit(values['seeds'])} | {ratio(values['castore'], values['vcr'])} | "
            f"{ratio(values['castore'], values['seeds'])} |"
        )
    git = result.get("git")
    if git:
        for label, field in (
            ("packed git repository", "packed"),
            ("git bytes to re-record 1 response", "rerecord_one"),
            ("git bytes to re-record 10%", "rerecord_tenth"),
        ):
            values = {a: git[a][field] for a in ("castore", *PEERS)}
            lines.append(
                f"| {label} | {kib(values['castore'])} | {kib(values['vcr'])} | "
                f"{kib(values['seeds'])} | {ratio(values['castore'], values['vcr'])} | "
                f"{ratio(values['castore'], values['seeds'])} |"
            )
    replay = result["replay"]
    for label, field, unit in (
        ("replay the suite through pytest, wall", "wall", seconds),
        ("replay the suite through pytest, CPU", "cpu", seconds),
        ("peak memory of that run", "rss", kib),
    ):
        values = {a: replay[a][field] for a in ("castore", *PEERS)}
        lines.append(
            f"| {label} | {spread(values['castore'], unit)} | {spread(values['vcr'], unit)} | "
            f"{spread(values['seeds'], unit)} | "
            f"{ratio(values['castore']['median'], values['vcr']['median'])} | "
            f"{ratio(values['castore']['median'], values['seeds']['median'])} |"
        )
    latency = result["latency"]
    for kind in ("warm", "cold"):
        values = {a: latency[a][kind] for a in ("castore", *PEERS)}
        lines.append(
            f"| per lookup, {kind} | {spread(values['castore'], micro)} | "
            f"{spread(values['vcr'], micro)} | {spread(values['seeds'], micro)} | "
            f"{ratio(values['castore']['median'], values['vcr']['median'])} | "
            f"{ratio(values['castore']['median'], values['seeds']['median'])} |"
        )
    floor = replay["floor"]
    raw = latency["raw floor"]["warm"]
    compression = result["compression_floor"]
    stats = result["castore_stats"]
    castore_values = stats["blob_bytes"]
    lines += [
        "",
        "| floor | floor | castore | castore ÷ floor |",
        "| --- | --- | --- | --- |",
        *(
            f"| the suite with values in memory, {label} | {spread(floor[field], seconds)} | "
            f"{spread(replay['castore'][field], seconds)} | "
            f"{_paired(replay, field):.3f}× ({paired_spread(replay, field)}) |"
            for label, field in (("wall", "wall"), ("CPU", "cpu"))
        ),
        f"| raw read + decompress + unpack, per lookup | {spread(raw, micro)} | "
        f"{spread(latency['castore']['warm'], micro)} | "
        f"{ratio(latency['castore']['warm']['median'], raw['median'])} |",
        f"| zstd -19 + 110 KB dictionary, values + dictionary | {kib(compression['bytes'])} | "
        f"{kib(castore_values)} (blobs + dictionary) | "
        f"{ratio(castore_values, compression['bytes'])} |",
        f"| the same floor, against castore's whole store | {kib(compression['bytes'])} | "
        f"{kib(size['castore']['bytes'])} (+ indexes, castore.json) | "
        f"{ratio(size['castore']['bytes'], compression['bytes'])} |",
        "",
        f"castore's store: {stats['entries']:,} entries in {stats['blobs']:,} blobs "
        f"(dedup {stats['dedup_ratio']:.2f}×), indexes {kib(stats['index_bytes'])}.",
        "",
    ]
    return lines


def _paired(replay: dict[str, Any], field: str) -> float:
    """castore ÷ floor as the median of each round's ratio."""
    return float(replay["castore/floor"][field]["median"])


def paired_spread(replay: dict[str, Any], field: str) -> str:
    paired = replay["castore/floor"][field]
    return f"rounds {paired['min']:.3f}–{paired['max']:.3f}, median of round ratios"


def targets(result: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """(target, measured, limit, met) for one scale."""
    size = result["footprint"]
    latency = result["latency"]
    replay = result["replay"]
    found = []
    if result["scale"] == 1:
        found += [
            (
                "store ≤ 1/10 of the VCR.py cassettes",
                size["castore"]["bytes"] / size["vcr"]["bytes"],
                0.1,
            ),
            (
                "store ≤ 1/3 of the seeds' JSON",
                size["castore"]["bytes"] / size["seeds"]["bytes"],
                1 / 3,
            ),
        ]
    found += [
        (
            "blobs + dictionary ≤ 1.15× the zstd-19 + dictionary floor",
            result["castore_stats"]["blob_bytes"] / result["compression_floor"]["bytes"],
            1.15,
        ),
        (
            "per lookup (warm) ≥ 100× below vcrpy",
            latency["vcr"]["warm"]["median"] / latency["castore"]["warm"]["median"],
            -100,
        ),
        (
            "per lookup (cold) ≥ 100× below vcrpy",
            latency["vcr"]["cold"]["median"] / latency["castore"]["cold"]["median"],
            -100,
        ),
        (
            "per lookup ≤ 1.5× the raw read + decompress + unpack floor",
            latency["castore"]["warm"]["median"] / latency["raw floor"]["warm"]["median"],
            1.5,
        ),
        (
            "pytest replay ≤ 1.1× the suite with values in memory (wall, paired)",
            _paired(replay, "wall"),
            1.1,
        ),
        # The packs issue's targets for a recorder lookup from packs.
        (
            "per lookup from packs ≤ 1.2× the raw floor",
            latency["castore"]["warm"]["median"] / latency["raw floor"]["warm"]["median"],
            1.2,
        ),
        (
            "per lookup (warm) ≥ 30× below vcrpy",
            latency["vcr"]["warm"]["median"] / latency["castore"]["warm"]["median"],
            -30,
        ),
        (
            "(ceiling) the raw floor itself ≥ 30× below vcrpy",
            latency["vcr"]["warm"]["median"] / latency["raw floor"]["warm"]["median"],
            -30,
        ),
    ]
    # A negative limit means "at least": the measured factor must reach its absolute value.
    return [
        (name, measured, limit, measured >= -limit if limit < 0 else measured <= limit)
        for name, measured, limit in found
    ]


def target_table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| scale | target | measured | met |", "| --- | --- | --- | --- |"]
    for result in results:
        for name, measured, limit, met in targets(result):
            shown = f"{measured:.1f}×" if limit < 0 else f"{measured:.3f}"
            lines.append(
                f"| {result['scale']}× | {name} | {shown} | {'yes' if met else '**no**'} |"
            )
    return lines


def tuning_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| zstd level | dictionary | bytes (with dictionary) | ratio "
        "| compress MB/s | decompress MB/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['level']} | {'110 KB' if row['dictionary'] else 'none'} | "
            f"{kib(row['bytes'])} | "
            f"{row['ratio']:.2f} | {row['compress_mb_s']:.1f} | {row['decompress_mb_s']:.0f} |"
        )
    return lines


def markdown(document: dict[str, Any]) -> str:
    machine = document["machine"]
    lines = [
        f"Measured {document['date']} on {machine['cpu']} ({machine['cores']} cores), "
        f"{machine['memory_gib']:.0f} GiB, {machine['system']}, Python {machine['python']}; "
        f"{', '.join(f'{k} {v}' for k, v in machine['versions'].items())}. "
        f"Command: `{document['command']}` ({document['seconds'] / 60:.1f} min). "
        "Times are medians of interleaved runs, with min–max in brackets.",
        "",
        "#### Targets",
        "",
        *target_table(document["results"]),
        "",
    ]
    for result in document["results"]:
        lines += scale_tables(result)
    if document.get("tuning"):
        lines += [
            f"#### zstd tuning ({document['tuning']['scale']}× the corpus, "
            f"{kib(document['tuning']['bytes'])} of distinct values)",
            "",
            *tuning_table(document["tuning"]["rows"]),
            "",
        ]
    return "\n".join(lines)
