"""The base of every JSON request body: unknown fields refused, every value storable.

Values are checked all the way down (metadata and the actor object are
free-form JSON): no NUL character, no unpaired surrogate (JSON's ``\\ud800``
escapes decode to strings no database or response can encode), no ``NaN``,
``Infinity`` or ``-Infinity``, and at most ``MAX_DEPTH`` levels of nesting.
PostgreSQL refuses NUL where SQLite stores it; Python's JSON parser accepts
the three non-finite constants although JSON has none, SQLite stores them and
they come back as ``null`` (or reach a JWT's ``act`` claim, which no verifier
accepts); an over-deep object is stored fine but can never be serialised
again: refusing all of them at the edge keeps every row readable.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

MAX_DEPTH = 32


def problem_with(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored and served back, or ``None`` if it can."""
    if depth > MAX_DEPTH:
        return f"must not nest more than {MAX_DEPTH} levels deep"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (NaN, Infinity and -Infinity are not JSON)"
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (no unpaired surrogates)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = problem_with(key, depth + 1) or problem_with(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = problem_with(item, depth + 1)
            if problem:
                return problem
    return None


class RequestBody(BaseModel):
    # An unknown field is an error, not silently dropped: a caller who sends
    # a setting actas does not have must learn that it had no effect.
    # A float field refuses non-finite numbers too (also when sent as "NaN" in a form).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = problem_with(value)
        if problem:
            raise ValueError(problem)
        return value
