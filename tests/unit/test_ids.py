from __future__ import annotations

import re
import threading

from hypothesis import given
from hypothesis import strategies as st

from shequn.ids import ALPHABET, encode_body, new_id


def _digits(value: int, length: int) -> str:
    """Base32 the slow way, digit by digit, most significant first."""
    out = []
    for _ in range(length):
        out.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


@given(st.integers(0, 2**48 - 1), st.integers(0, 2**80 - 1))
def test_body_is_the_timestamp_then_the_random_part_in_base32(ms: int, rand: int) -> None:
    assert encode_body(ms, rand) == _digits(ms, 10) + _digits(rand, 16)


@given(
    st.tuples(st.integers(0, 2**48 - 1), st.integers(0, 2**80 - 1)),
    st.tuples(st.integers(0, 2**48 - 1), st.integers(0, 2**80 - 1)),
)
def test_bodies_sort_like_their_numbers(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert (encode_body(*a) < encode_body(*b)) == (a < b)


def test_new_ids_have_the_prefix_and_26_base32_characters() -> None:
    made = new_id("ord")
    assert re.fullmatch(r"ord_[0-9a-hjkmnp-tv-z]{26}", made), made


def test_ids_made_later_sort_later_even_across_threads() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        for _ in range(2_000):
            out.append(new_id("evt"))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for out in made for i in out]
    assert len(set(everything)) == len(everything)
    for out in made:
        assert out == sorted(out)
