"""Error fingerprints: one hash per failing code path, whatever the message or line numbers."""

from __future__ import annotations

import pytest

from oh.domain.errors import one_line, stack_hash


def _fail_in_fetch(symbol: str) -> None:
    raise KeyError(f"no data for {symbol}")


def _fail_in_parse(symbol: str) -> None:
    raise KeyError(f"no data for {symbol}")


def _via_fetch(symbol: str) -> None:
    _fail_in_fetch(symbol)


def _caught(fn, *args) -> BaseException:
    try:
        fn(*args)
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def test_same_code_path_with_different_messages_hashes_the_same() -> None:
    """Two failures of one bug with different symbols in the message share one fingerprint."""
    assert stack_hash(_caught(_fail_in_fetch, "AAPL")) == stack_hash(_caught(_fail_in_fetch, "MSFT"))


def test_different_code_paths_hash_differently() -> None:
    """A failure in another function, or reached through another caller, is a different fingerprint."""
    direct = stack_hash(_caught(_fail_in_fetch, "AAPL"))
    assert stack_hash(_caught(_fail_in_parse, "AAPL")) != direct
    assert stack_hash(_caught(_via_fetch, "AAPL")) != direct


def test_different_exception_types_hash_differently() -> None:
    """The same place raising another exception type is another fingerprint."""
    def boom(kind: type[Exception]) -> None:
        raise kind("x")

    assert stack_hash(_caught(boom, KeyError)) != stack_hash(_caught(boom, ValueError))


def test_line_numbers_do_not_change_the_hash() -> None:
    """An edit that moves code within its file (new lines above) keeps the fingerprint."""
    source = "def worker(x):\n    raise RuntimeError(f'bad {x}')\n"
    hashes = set()
    for padding in (0, 5, 50):
        namespace: dict = {}
        exec(compile("\n" * padding + source, "jobs.py", "exec"), namespace)
        hashes.add(stack_hash(_caught(namespace["worker"], padding)))
    assert len(hashes) == 1


def test_hash_is_sixteen_hex_digits() -> None:
    """The fingerprint fits the error_stack_hash column: 16 lower-case hex digits."""
    digest = stack_hash(_caught(_fail_in_fetch, "X"))
    assert len(digest) == 16
    int(digest, 16)
    assert digest == digest.lower()


def test_an_exception_never_raised_still_hashes() -> None:
    """An exception built but not raised (no traceback) gets a hash from its type alone."""
    assert stack_hash(ValueError("a")) == stack_hash(ValueError("b")) != stack_hash(KeyError("a"))


@pytest.mark.parametrize(
    ("exc", "text"),
    [(ValueError("line one\n  line two\ttabbed"), "line one line two tabbed"), (KeyboardInterrupt(), "KeyboardInterrupt")],
)
def test_one_line_flattens_whitespace_and_falls_back_to_the_type(exc: BaseException, text: str) -> None:
    """Messages become one line; an empty message shows the exception type."""
    assert one_line(exc) == text


def test_one_line_is_bounded() -> None:
    """A huge message is cut to the limit."""
    assert len(one_line(ValueError("x" * 10_000), limit=100)) == 100
