"""The base of every JSON request body: unknown fields refused, every value storable.

Values are checked all the way down (metadata and the actor object are
free-form JSON): no NUL character, no unpaired surrogate (JSON's ``\\ud800``
escapes decode to strings no database or response can encode), and at most
``MAX_DEPTH`` levels of nesting. PostgreSQL refuses NUL where SQLite stores
it, and an over-deep object is stored fine but can never be serialised
again: refusing both at the edge keeps every row readable.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

MAX_DEPTH = 32


def problem_with(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored and served back, or ``None`` if it can."""
    if depth > MAX_DEPTH:
        return f"must not nest more than {MAX_DEPTH} levels deep"
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
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = problem_with(value)
        if problem:
            raise ValueError(problem)
        return value
