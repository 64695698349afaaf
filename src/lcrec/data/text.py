"""Item text cleaning (LC-Rec protocol), vectorised with Arrow compute over whole columns."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MAX_TEXT_LENGTH = 2000


def _is_text(value: object) -> bool:
    """A string, a number, missing, or a list of such (nested lists too): what a text field may hold."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return all(_is_text(part) for part in value)
    return value is None or (
        isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    )


def non_text_cells(frame: pd.DataFrame, fields: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
    """Per field, a mask of the cells that are not text ({"en": "x"}, true): they would otherwise be stringified
    into titles such as "{'en': 'x'}" or "True". Text-typed columns are skipped without a look."""
    masks = {}
    for field in fields:
        if field in frame.columns and frame[field].dtype == object:
            bad = ~frame[field].map(_is_text).to_numpy(dtype=bool)
            if bad.any():
                masks[field] = bad
    return masks


def join_list_values(values: pd.Series, separator: str = " ") -> pd.Series:
    """Turn list-valued cells into one string (joined with `separator`); None/NaN become ""."""

    def as_text(value: object) -> str:
        if isinstance(value, (list, tuple, np.ndarray)):
            return separator.join(as_text(part) for part in value if part is not None)
        if value is None or (isinstance(value, float) and value != value):
            return ""
        return str(value)

    if values.dtype != object:  # already text (or all missing): no per-cell work
        return values.fillna("").astype(str)
    return values.map(as_text).astype(str)


def clean_text(values: pd.Series, end_with_period: bool = True, max_length: int = MAX_TEXT_LENGTH) -> pd.Series:
    """HTML-unescape, strip tags, quotes and line breaks, collapse spaces, end with exactly one "." when asked;
    a text longer than `max_length` characters becomes "" (such fields are usually scraped noise)."""
    text = pa.array(values.fillna("").astype(str).to_numpy(dtype=object), pa.string())
    escaped = pc.match_substring(text, "&").to_numpy(zero_copy_only=False)
    if escaped.any():
        python_text = text.to_numpy(zero_copy_only=False)
        python_text[escaped] = [html.unescape(value) for value in python_text[escaped]]
        text = pa.array(python_text, pa.string())
    text = pc.replace_substring_regex(text, r"<[^<>]*>", " ")
    text = pc.replace_substring_regex(text, r"[\"\r\n\t]+", " ")
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s+", " "))
    if end_with_period:
        text = pc.replace_substring_regex(text, r"[\s.]+$", "")
        text = pc.if_else(pc.equal(text, ""), text, pc.binary_join_element_wise(text, ".", ""))
    text = pc.if_else(pc.greater(pc.utf8_length(text), max_length), "", text)
    return pd.Series(text.to_numpy(zero_copy_only=False), index=values.index, dtype=object).astype(str)
