"""Which keys may sign the tokens the registry accepts, as distribution decides it.

A token's header names its key in one of three ways:
    x5c   a certificate chain whose root must be in ``rootcertbundle``; the leaf's key signed the token
    kid   the libtrust key id of a certificate's key in ``rootcertbundle``, or a ``kid`` in the ``jwks`` file
    jwk   the key itself, accepted only when it is one of the trusted keys above
The built-in token service's key is trusted as well, by its libtrust key id.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from registry.auth.jwt import PrivateKey, PublicKey, TokenError, b64url_decode

MAX_CHAIN = 8
_JWK_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


def key_id(key: PublicKey) -> str:
    """libtrust's key id: the SHA-256 of the DER public key, cut to 240 bits, base32, in 12 groups of 4."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _usable(key: Any) -> PublicKey:
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError(f"unsupported key type {type(key).__name__} (expected RSA or EC)")
    return key


def load_root_bundle(path: str) -> list[x509.Certificate]:
    certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    for certificate in certificates:
        _usable(certificate.public_key())
    return certificates


def _int(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError("expected a base64url string")
    return int.from_bytes(b64url_decode(value), "big")


def jwk_public_key(jwk: object) -> PublicKey:
    """The public key of an RSA or EC JWK (RFC 7517/7518); ValueError or TokenError when it is not one."""
    if not isinstance(jwk, dict):
        raise ValueError("a JWK must be a JSON object")
    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(_int(jwk.get("e")), _int(jwk.get("n"))).public_key()
    curve = _JWK_CURVES.get(str(jwk.get("crv")))
    if jwk.get("kty") == "EC" and curve is not None:
        return ec.EllipticCurvePublicNumbers(_int(jwk.get("x")), _int(jwk.get("y")), curve).public_key()
    raise ValueError(f"unsupported JWK (kty {jwk.get('kty')!r}, crv {jwk.get('crv')!r})")


def load_jwks(path: str) -> dict[str, PublicKey]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError("expected a JSON object with a 'keys' list")
    found: dict[str, PublicKey] = {}
    for jwk in keys:
        key = jwk_public_key(jwk)
        found[str(jwk.get("kid") or key_id(key))] = key
    return found


@dataclass
class TrustStore:
    roots: list[x509.Certificate] = field(default_factory=list)
    keys: dict[str, PublicKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for root in self.roots:
            key = _usable(root.public_key())
            self.keys.setdefault(key_id(key), key)
        self._trusted = {_spki(key) for key in self.keys.values()}

    def key_for(self, header: dict[str, Any], now: datetime | None = None) -> PublicKey:
        if "x5c" in header:
            return self._chain_key(header["x5c"], now or datetime.now(UTC))
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self.keys:
            return self.keys[kid]
        if "jwk" in header:
            try:
                key = jwk_public_key(header["jwk"])
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise TokenError("invalid jwk header") from None
            if _spki(key) in self._trusted:
                return key
            raise TokenError("the token's jwk is not a trusted key")
        raise TokenError("the token names no trusted signing key")

    def _chain_key(self, chain: object, now: datetime) -> PublicKey:
        listed = chain if isinstance(chain, list) else []
        if not 1 <= len(listed) <= MAX_CHAIN or any(not isinstance(c, str) for c in listed):
            raise TokenError("invalid x5c header")
        try:
            certificates = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in listed]
        except ValueError:
            raise TokenError("invalid x5c header") from None
        for certificate in certificates:
            if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                raise TokenError("a certificate in the x5c chain is not valid now")
        if not self._anchored(certificates):
            raise TokenError("the x5c chain does not lead to a trusted root")
        try:
            return _usable(certificates[0].public_key())
        except (ValueError, UnsupportedAlgorithm):
            raise TokenError("unsupported key in the x5c chain") from None

    def _anchored(self, chain: list[x509.Certificate]) -> bool:
        """Each certificate is signed by the next one, and the last is a root or is signed by one."""
        for child, parent in zip(chain, chain[1:], strict=False):
            if not _issued_by(child, parent):
                return False
        last = chain[-1]
        return any(last == root or _issued_by(last, root) for root in self.roots)


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def load_or_create_key(path: str) -> PrivateKey:
    """The token service's signing key; a new P-256 key (mode 0600) when the file does not exist yet.
    Several processes starting together end up with the same key: the file is linked into place only if absent."""
    target = Path(path)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".key-")
        try:
            os.write(fd, pem)
            os.fsync(fd)
            os.close(fd)
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(temp, target)
        finally:
            os.unlink(temp)
    key = serialization.load_pem_private_key(target.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"unsupported key type {type(key).__name__} (expected RSA or EC)")
    return key
