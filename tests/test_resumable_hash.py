"""registry.content.resumable_hash: libcrypto's sha256 and sha512 with a state saved and resumed anywhere, checked
against hashlib; a saved state that is damaged or covers other bytes is never resumed."""

from __future__ import annotations

import ctypes.util
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.content import resumable_hash

ALGORITHMS = ["sha256", "sha512"]
KEY = b"0b7e2a4c-5d1f-4c3e-9a8b-7c6d5e4f3a2b"


def saved_after(algorithm: str, data: bytes) -> bytes:
    hasher = resumable_hash.new(algorithm)
    hasher.update(data)
    saved = resumable_hash.saved_state(hasher, KEY)
    assert saved is not None, "libcrypto's SHA functions were not loaded: hashes cannot be saved"
    return saved


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_new_hashes_like_hashlib(algorithm: str) -> None:
    hasher = resumable_hash.new(algorithm)
    assert hasher.name == algorithm
    for piece in (b"", b"a" * 63, b"b", b"c" * 1000):
        hasher.update(piece)
    expected = hashlib.new(algorithm, b"a" * 63 + b"b" + b"c" * 1000).hexdigest()
    assert hasher.hexdigest() == expected
    assert hasher.hexdigest() == expected, "a digest leaves the hash usable"
    hasher.update(b"more")
    assert hasher.hexdigest() == hashlib.new(algorithm, b"a" * 63 + b"b" + b"c" * 1000 + b"more").hexdigest()


@settings(max_examples=200, deadline=None)
@given(
    algorithm=st.sampled_from(ALGORITHMS),
    data=st.binary(max_size=1000),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=6),
)
def test_a_state_saved_and_resumed_at_any_cut_hashes_like_hashlib(algorithm: str, data: bytes, cuts: list[int]) -> None:
    hasher = resumable_hash.new(algorithm)
    done = 0
    for cut in sorted({min(cut, len(data)) for cut in cuts}) + [len(data)]:
        hasher.update(data[done:cut])
        done = cut
        resumed = resumable_hash.resume(resumable_hash.saved_state(hasher, KEY), done, KEY)
        assert resumed is not None
        assert resumed.name == algorithm
        hasher = resumed
    assert hasher.hexdigest() == hashlib.new(algorithm, data).hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_saved_state_is_small(algorithm: str) -> None:
    # the chaining words, at most one block of pending bytes, and a few bytes of header and check
    assert (
        len(saved_after(algorithm, b"x" * 10_000_000))
        <= {"sha256": 18 + 32 + 63 + 8, "sha512": 18 + 64 + 127 + 8}[algorithm]
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_damaged_state_is_never_resumed(algorithm: str) -> None:
    data = bytes(range(256)) * 4 + b"tail"
    saved = saved_after(algorithm, data)
    assert resumable_hash.resume(saved, len(data), KEY) is not None
    for position in range(len(saved)):
        for flip in (0x01, 0x80):
            damaged = saved[:position] + bytes([saved[position] ^ flip]) + saved[position + 1 :]
            assert resumable_hash.resume(damaged, len(data), KEY) is None, (position, flip)
    for cut in range(len(saved)):
        assert resumable_hash.resume(saved[:cut], len(data), KEY) is None, cut
    assert resumable_hash.resume(saved + b"\0", len(data), KEY) is None
    assert resumable_hash.resume(None, len(data), KEY) is None


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_state_saved_for_another_key_is_never_resumed(algorithm: str) -> None:
    # another upload session's hash, even of as many bytes, is not this one's
    saved = saved_after(algorithm, b"data")
    assert resumable_hash.resume(saved, 4, KEY) is not None
    for other in (b"", KEY[:-1], KEY + b"0", b"1" + KEY[1:]):
        assert resumable_hash.resume(saved, 4, other) is None, other


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("length", [0, 1, 1027, 1029, 1024 * 1024])
def test_a_state_covering_other_bytes_than_expected_is_never_resumed(algorithm: str, length: int) -> None:
    # a session's size moved on without its saved hash (a crash, or a version that does not save it)
    saved = saved_after(algorithm, bytes(range(256)) * 4 + b"tail")
    assert resumable_hash.resume(saved, length, KEY) is None


def test_without_libcrypto_hashes_come_from_hashlib_and_cannot_be_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable_hash, "_algorithms", dict)
    hasher = resumable_hash.new("sha256")
    hasher.update(b"data")
    assert hasher.hexdigest() == hashlib.sha256(b"data").hexdigest()
    assert resumable_hash.saved_state(hasher, KEY) is None
    monkeypatch.undo()
    assert resumable_hash.resume(saved_after("sha256", b"data"), 4, KEY) is not None


def test_an_unloadable_library_leaves_hashlib_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert resumable_hash._algorithms.__wrapped__() == {}
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "libcrypto not found" in caplog.records[0].getMessage()
    with pytest.raises(OSError):
        resumable_hash._load("/nonexistent/libcrypto.so.3")
