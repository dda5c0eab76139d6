"""How the dashboard writes times: relative words beside the exact time."""

from __future__ import annotations

import pytest

from actas.server.dashboard.pages import relative

NOW = 1_800_000_000_000


@pytest.mark.parametrize(("seconds_ago", "words"), [
    (0, "just now"), (44, "just now"), (45, "1 min ago"), (59, "1 min ago"),
    (60, "1 min ago"), (150, "2 min ago"), (3599, "59 min ago"), (3600, "1 h ago"),
    (5 * 3600 + 1, "5 h ago"), (2 * 86400 - 1, "1 d ago"), (86400, "1 d ago"),
    (30 * 86400, "30 d ago"),
    (-30, "in a few seconds"), (-50, "in 1 min"), (-2 * 3600, "in 2 h"),
])
def test_relative_times_read_as_a_person_says_them(seconds_ago: int, words: str) -> None:
    assert relative(NOW - seconds_ago * 1000, NOW) == words


def test_a_time_over_a_month_away_is_a_date() -> None:
    assert relative(NOW - 40 * 86400 * 1000, NOW) == "2026-12-06"  # NOW is 2027-01-15
