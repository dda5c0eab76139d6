"""``new_id``: prefixed, Crockford base32, time-sortable, unique."""

from __future__ import annotations

from actas.server.ids import new_id

NOW_MS = 1_764_072_000_000
CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_id_is_the_prefix_then_26_characters() -> None:
    value = new_id("user", NOW_MS)
    assert value.startswith("user_")
    assert len(value) == len("user_") + 26


def test_id_uses_only_the_crockford_alphabet() -> None:
    used = set().union(*(new_id("sess", NOW_MS + i).removeprefix("sess_") for i in range(1000)))
    assert used <= CROCKFORD
    assert not used & set("ILOU")


def test_ids_created_at_a_later_millisecond_sort_after_earlier_ones() -> None:
    for step in (1, 1000, 86_400_000):
        for _ in range(200):
            assert new_id("user", NOW_MS) < new_id("user", NOW_MS + step)


def test_ids_of_the_same_millisecond_share_their_time_part() -> None:
    assert new_id("user", NOW_MS)[:15] == new_id("user", NOW_MS)[:15]
    assert new_id("user", NOW_MS)[:15] != new_id("user", NOW_MS + 1)[:15]


def test_ten_thousand_ids_in_one_millisecond_are_unique() -> None:
    assert len({new_id("jti", NOW_MS) for _ in range(10_000)}) == 10_000
