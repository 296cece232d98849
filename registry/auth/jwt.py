"""Compact JWS (RFC 7515) signed and checked with ``cryptography``: RS256/384/512 and ES256/384/512 only.

``none`` and the HMAC algorithms are never accepted: a verifier holding a public key must not be tricked into
using it as an HMAC secret. ES signatures are the fixed-size ``r || s`` of RFC 7518, not DER.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES: dict[str, type[ec.EllipticCurve]] = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
MAX_TOKEN_BYTES = 64 * 1024


class TokenError(Exception):
    """A token that is malformed, badly signed, untrusted or not valid now: always ``invalid_token``."""


@dataclass(frozen=True)
class Decoded:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenError("invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("invalid base64url") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenError(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError(f"the {what} is not a JSON object")
    return value


def decode(token: str) -> Decoded:
    """Split and parse a compact JWS without checking anything but its shape."""
    if len(token) > MAX_TOKEN_BYTES or not token.isascii():
        raise TokenError("malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    header = _json_object(b64url_decode(parts[0]), "header")
    claims = _json_object(b64url_decode(parts[1]), "claim set")
    return Decoded(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2]))


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    for name, curve in _CURVES.items():
        if isinstance(key.curve, curve):
            return name
    raise ValueError(f"unsupported elliptic curve {key.curve.name}")


def sign(claims: dict[str, Any], key: PrivateKey, fields: dict[str, Any]) -> str:
    """A compact JWS of ``claims``; ``fields`` (``kid``, ``x5c``, ...) join ``typ`` and ``alg`` in the header."""
    header = {"typ": "JWT", "alg": algorithm_for(key), **fields}
    parts = (json.dumps(part, separators=(",", ":")).encode() for part in (header, claims))
    signing_input = ".".join(b64url_encode(part) for part in parts)
    return f"{signing_input}.{b64url_encode(signature(signing_input.encode('ascii'), key, header['alg']))}"


def signature(signing_input: bytes, key: PrivateKey, alg: str) -> bytes:
    digest = _HASHES[alg[2:]]()
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), digest)
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify_signature(decoded: Decoded, key: PublicKey, allowed: frozenset[str]) -> None:
    alg = decoded.header.get("alg")
    if not isinstance(alg, str) or alg not in allowed or alg not in ALGORITHMS:
        raise TokenError(f"signing algorithm {alg!r} is not accepted")
    digest = _HASHES[alg[2:]]()
    try:
        if alg.startswith("RS") and isinstance(key, rsa.RSAPublicKey):
            key.verify(decoded.signature, decoded.signing_input, padding.PKCS1v15(), digest)
            return
        if alg.startswith("ES") and isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES[alg]):
            key.verify(_der_signature(decoded.signature, key), decoded.signing_input, ec.ECDSA(digest))
            return
    except InvalidSignature:
        raise TokenError("invalid signature") from None
    raise TokenError(f"signing algorithm {alg} does not match the key")


def _der_signature(raw: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    size = (key.curve.key_size + 7) // 8
    if len(raw) != 2 * size:
        raise TokenError("invalid signature")
    return encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))
