"""Strict JSON for request bodies: every value the standard parser would let through but a client never meant.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity`, turns `1e400` into infinity, parses integers of any size
(and raises a plain ValueError past 4,300 digits), keeps the last of two repeated keys, and raises RecursionError on
deep nesting. Each of these becomes an `InvalidBody` naming where in the body it is, so the API answers 422.
"""

from __future__ import annotations

import json
import math
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SHOWN_CHARS = 24  # how much of an offending number a message repeats


class InvalidBody(ValueError):
    """A body that is not strict JSON; `loc` is its place (`("body", "histories", 0, 1)`), `kind` a short code."""

    def __init__(self, loc: tuple[str | int, ...], message: str, kind: str):
        super().__init__(f"{'.'.join(str(part) for part in loc)}: {message}")
        self.loc = loc
        self.message = message
        self.kind = kind


class _Rejected:
    """A number that parsed but must not reach the application; found (with its place) after parsing."""

    __slots__ = ("message", "kind")

    def __init__(self, message: str, kind: str):
        self.message = message
        self.kind = kind


class _RepeatedKeys(dict):
    """A JSON object that named some key twice (the parser keeps the last value; we refuse the object)."""

    repeated: str = ""


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def _constant(text: str) -> _Rejected:
    return _Rejected(f"{text} is not a JSON number (JSON has no NaN or Infinity)", "non_finite_number")


def _float(text: str) -> float | _Rejected:
    value = float(text)
    if math.isfinite(value):
        return value
    return _Rejected(f"{_shown(text)} is out of range for a 64-bit float", "number_out_of_range")


def _int(text: str) -> int | _Rejected:
    if len(text.lstrip("-")) <= 19 and INT64_MIN <= (value := int(text)) <= INT64_MAX:
        return value
    return _Rejected(f"{_shown(text)} is outside the 64-bit integer range", "number_out_of_range")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    keys = [key for key, _ in pairs]
    value = _RepeatedKeys(pairs)
    value.repeated = next(key for position, key in enumerate(keys) if key in keys[:position])
    return value


def _first_problem(document: Any) -> InvalidBody | None:
    """The first rejected value in document order, with its place; iterative, so depth cannot overflow the stack."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ("body",))]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, _Rejected):
            return InvalidBody(loc, value.message, value.kind)
        if isinstance(value, _RepeatedKeys):
            return InvalidBody(
                loc, f"the key {value.repeated!r} appears more than once in one object", "duplicate_key"
            )
        if isinstance(value, dict):
            stack.extend((child, (*loc, key)) for key, child in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((value[position], (*loc, position)) for position in reversed(range(len(value))))
    return None


def parse_json_body(raw: bytes) -> Any:
    """Decode a UTF-8 JSON body strictly; raise InvalidBody naming the place of the first problem."""
    if not raw.strip():
        raise InvalidBody(("body",), "the body is empty: send a JSON object", "missing")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidBody(("body",), f"not UTF-8 text (byte {error.start})", "json_invalid") from None
    try:
        document = json.loads(
            text, parse_constant=_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_object
        )
    except json.JSONDecodeError as error:
        message = f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        raise InvalidBody(("body",), message, "json_invalid") from None
    except RecursionError:
        raise InvalidBody(("body",), "JSON nested too deeply", "json_invalid") from None
    problem = _first_problem(document)
    if problem is not None:
        raise problem
    return document
