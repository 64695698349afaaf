"""The metrics.json record every method writes (keys in ARCHITECTURE.md), and its printed table."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..io_utils import read_json
from .metrics import METRIC_NAMES


def build_metrics_record(
    per_template: Mapping[str, Mapping[str, float]],
    *,
    method: str,
    num_users: int,
    num_beams: int | None,
    invalid_rate: float,
    seconds: float,
    exclude_history: bool,
    **extra: object,
) -> dict:
    """metrics.json: top-level metrics are the mean over templates (with per-template min and max).

    `users_per_second` is users over the whole run's wall time, all templates included.
    """
    if not per_template:
        raise ValueError("no metrics to record")
    tables = list(per_template.values())
    record: dict[str, object] = {name: sum(t[name] for t in tables) / len(tables) for name in METRIC_NAMES}
    record["per_template"] = {str(key): dict(value) for key, value in per_template.items()}
    record["template_min"] = {name: min(t[name] for t in tables) for name in METRIC_NAMES}
    record["template_max"] = {name: max(t[name] for t in tables) for name in METRIC_NAMES}
    record.update(
        method=method,
        num_users=int(num_users),
        num_beams=num_beams,
        invalid_rate=float(invalid_rate),
        seconds=round(float(seconds), 3),
        users_per_second=round(num_users / seconds, 3) if seconds > 0 else None,
        exclude_history=bool(exclude_history),
    )
    record.update(extra)
    return record


def format_table(records: Mapping[str, Mapping], names: Sequence[str] = METRIC_NAMES) -> str:
    """A Markdown table, one row per method: the metrics, then users and time."""
    header = "| method | " + " | ".join(names) + " | users | seconds |"
    lines = [header, "|" + "---|" * (len(names) + 3)]
    for label, record in records.items():
        values = " | ".join(f"{record[name]:.4f}" for name in names)
        lines.append(f"| {label} | {values} | {record['num_users']} | {record['seconds']:.1f} |")
    return "\n".join(lines)


def is_metrics_record(path: str | os.PathLike) -> bool:
    """True when `path` holds a metrics record (a JSON object with every metric): an earlier output that
    `lcrec evaluate` / `lcrec baseline` may replace, unlike any other file at that path."""
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and all(name in record for name in METRIC_NAMES)
