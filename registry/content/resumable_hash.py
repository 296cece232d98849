"""sha256 and sha512 whose state can be saved and resumed, so that any worker or replica can continue an upload's hash.

hashlib cannot export a hash's state. OpenSSL's libcrypto (``libcrypto.so.3``, which Python's ``ssl`` already needs)
still exports the low-level ``SHA256_Init/Update/Final`` and ``SHA512_*`` functions, whose contexts (``SHA256_CTX``,
``SHA512_CTX`` in ``openssl/sha.h``) are plain memory the caller owns. Called through ctypes (which releases the GIL)
they are OpenSSL's own optimized code, as fast as hashlib. A saved state is written in a portable form, whatever
the machine's byte order::

    version (1) | algorithm (1) | bytes hashed (8, big-endian) | chaining words (8 x 4 or 8 x 8, big-endian)
        | the bytes of the unfinished block (bytes hashed % block size) | check (8 bytes)

where the check is the first 8 bytes of the sha256 of a key (what the state belongs to: an upload session's id)
and what precedes it. A state is only resumed when it is well formed, its check matches its key, and it covers
exactly the bytes expected.
Where libcrypto cannot be loaded (or fails its self-test) hashes come from hashlib and cannot be saved: an upload
that moves to another process is then hashed again from storage (said once in the log).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
import struct
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("registry.uploads")

_VERSION = 1
_HEADER = struct.Struct(">BBQ")
_CHECK_SIZE = 8


class Hasher(Protocol):
    @property
    def name(self) -> str: ...

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class _Sha256Ctx(ctypes.Structure):
    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_ubyte * 64),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


class _Sha512Ctx(ctypes.Structure):
    _fields_ = [
        ("h", ctypes.c_uint64 * 8),
        ("Nl", ctypes.c_uint64),
        ("Nh", ctypes.c_uint64),
        ("data", ctypes.c_ubyte * 128),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


@dataclass(frozen=True)
class _Algorithm:
    """One algorithm's libcrypto functions and the shape of its context."""

    name: str
    code: int
    ctx: type[ctypes.Structure]
    word: str  # struct format of a chaining word
    block: int
    digest_size: int
    init: Any
    update: Any
    final: Any

    @property
    def word_bits(self) -> int:
        return struct.calcsize(self.word) * 8


class OpenSSLHash:
    """A hashlib-like hash over a libcrypto context this object owns, whose state can be saved."""

    def __init__(self, algorithm: _Algorithm, ctx: ctypes.Structure | None = None) -> None:
        self._algorithm = algorithm
        if ctx is None:
            ctx = algorithm.ctx()
            _check(algorithm.init(ctypes.byref(ctx)))
        self._ctx: Any = ctx

    @property
    def name(self) -> str:
        return self._algorithm.name

    def update(self, data: bytes, /) -> None:
        _check(self._algorithm.update(ctypes.byref(self._ctx), data, len(data)))

    def hexdigest(self) -> str:
        ctx = type(self._ctx).from_buffer_copy(self._ctx)  # Final pads the context: this hash stays usable
        out = ctypes.create_string_buffer(self._algorithm.digest_size)
        _check(self._algorithm.final(out, ctypes.byref(ctx)))
        return out.raw.hex()

    def state(self, key: bytes) -> bytes:
        algorithm, ctx = self._algorithm, self._ctx
        length = ((ctx.Nh << algorithm.word_bits) | ctx.Nl) >> 3
        assert ctx.num == length % algorithm.block, "libcrypto's context is not laid out as openssl/sha.h says"
        body = _HEADER.pack(_VERSION, algorithm.code, length)
        body += struct.pack(f">8{algorithm.word}", *ctx.h) + bytes(ctx.data[: ctx.num])
        return body + _check_of(key, body)


def new(algorithm: str) -> Hasher:
    """A new ``sha256`` or ``sha512`` hash: resumable when libcrypto is loaded, else hashlib's."""
    found = _algorithms().get(algorithm)
    return OpenSSLHash(found) if found is not None else hashlib.new(algorithm)


def saved_state(hasher: Hasher, key: bytes) -> bytes | None:
    """The hash's state, to ``resume`` it in another process under the same ``key``; None for a hash that cannot be
    saved."""
    return hasher.state(key) if isinstance(hasher, OpenSSLHash) else None


def resume(saved: bytes | None, length: int, key: bytes) -> Hasher | None:
    """The hash a ``saved_state`` holds, provided it is intact, was saved under ``key`` and covers exactly ``length``
    bytes; else None."""
    return _resume(saved, length, key, _algorithms())


def _check_of(key: bytes, body: bytes) -> bytes:
    return hashlib.sha256(len(key).to_bytes(2, "big") + key + body).digest()[:_CHECK_SIZE]


def _resume(saved: bytes | None, length: int, key: bytes, algorithms: dict[str, _Algorithm]) -> OpenSSLHash | None:
    if saved is None or len(saved) < _HEADER.size + _CHECK_SIZE:
        return None
    body, check = saved[:-_CHECK_SIZE], saved[-_CHECK_SIZE:]
    version, code, hashed = _HEADER.unpack_from(body)
    algorithm = next((a for a in algorithms.values() if a.code == code), None)
    if version != _VERSION or algorithm is None or hashed != length:
        return None
    words_size = struct.calcsize(f">8{algorithm.word}")
    tail = body[_HEADER.size + words_size :]
    if len(tail) != length % algorithm.block or _check_of(key, body) != check:
        return None
    return OpenSSLHash(algorithm, _context(algorithm, body[_HEADER.size : _HEADER.size + words_size], tail, length))


def _context(algorithm: _Algorithm, words: bytes, tail: bytes, length: int) -> ctypes.Structure:
    ctx: Any = algorithm.ctx()
    _check(algorithm.init(ctypes.byref(ctx)))  # md_len and anything else Init sets
    ctx.h[:] = struct.unpack(f">8{algorithm.word}", words)
    bits = length << 3
    ctx.Nl, ctx.Nh = bits & ((1 << algorithm.word_bits) - 1), bits >> algorithm.word_bits
    ctx.data[: len(tail)] = tail
    ctx.num = len(tail)
    return ctx  # type: ignore[no-any-return]


def _check(result: int) -> None:
    if result != 1:
        raise RuntimeError("libcrypto's SHA function failed")


@functools.cache
def _algorithms() -> dict[str, _Algorithm]:
    """libcrypto's sha256 and sha512, once they pass a self-test against hashlib; none when it cannot be used."""
    try:
        found = _load(ctypes.util.find_library("crypto"))
        _self_test(found)
    except (OSError, AttributeError, AssertionError, RuntimeError) as error:
        log.warning(
            "resumable hashes unavailable (%s): an upload continued by another worker or replica is hashed again "
            "from storage when it completes",
            error,
        )
        return {}
    return found


def _load(library: str | None) -> dict[str, _Algorithm]:
    if library is None:
        raise OSError("libcrypto not found")
    crypto = ctypes.CDLL(library)
    shapes = {"sha256": (1, _Sha256Ctx, "I", 64, 32, 112), "sha512": (2, _Sha512Ctx, "Q", 128, 64, 216)}
    found = {}
    for name, (code, ctx, word, block, digest_size, size) in shapes.items():
        assert ctypes.sizeof(ctx) == size, f"{ctx.__name__} is {ctypes.sizeof(ctx)} bytes, not {size}"
        prefix = name.upper()
        functions = [getattr(crypto, f"{prefix}_{step}") for step in ("Init", "Update", "Final")]
        pointer = ctypes.POINTER(ctx)
        for function, argtypes in zip(functions, _signatures(pointer), strict=True):
            function.argtypes, function.restype = argtypes, ctypes.c_int
        found[name] = _Algorithm(name, code, ctx, word, block, digest_size, *functions)
    return found


def _signatures(pointer: Any) -> list[list[Any]]:
    return [[pointer], [pointer, ctypes.c_char_p, ctypes.c_size_t], [ctypes.c_char_p, pointer]]


def _self_test(algorithms: dict[str, _Algorithm]) -> None:
    """Every algorithm hashes like hashlib, and a state saved mid-block and resumed still does."""
    data = bytes(range(256)) * 3
    for algorithm in algorithms.values():
        first = OpenSSLHash(algorithm)
        first.update(data[:300])
        resumed = _resume(first.state(b"self-test"), 300, b"self-test", algorithms)
        assert resumed is not None, f"{algorithm.name}: a saved state did not resume"
        resumed.update(data[300:])
        assert resumed.hexdigest() == hashlib.new(algorithm.name, data).hexdigest(), f"{algorithm.name} differs"
