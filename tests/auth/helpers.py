"""Keys, certificates, htpasswd files, tokens and configurations for the auth tests."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from registry.auth import jwt
from registry.auth.jwt import PrivateKey
from registry.auth.trust import key_id
from registry.config import Config, load_config

SERVICE = "registry.test"
ISSUER = "test-issuer"
REALM = "https://auth.example.com/token"


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(
    key: PrivateKey, name: str, issuer: tuple[PrivateKey, x509.Certificate] | None = None, *, ca: bool = True
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer, issuer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA256())


def write_pem(path: Path, *certificates: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return path


def x5c(*certificates: x509.Certificate) -> list[str]:
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certificates]


def claims(access: list[dict[str, Any]] | None = None, *, lifetime: float = 300, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": SERVICE,
        "exp": now + int(lifetime),
        "nbf": now - 1,
        "iat": now - 1,
        "access": access or [],
    }
    return base | overrides


def repo_access(name: str, *actions: str) -> dict[str, Any]:
    return {"type": "repository", "name": name, "actions": list(actions)}


def token(key: PrivateKey, body: dict[str, Any], **header: Any) -> str:
    """A JWT signed by ``key``, naming it by its libtrust ``kid`` unless ``header`` says otherwise."""
    return jwt.sign(body, key, header or {"kid": key_id(key.public_key())})


def forged(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"sig") -> str:
    """A token with any header (``alg: none``, ``HS256``) and a signature that proves nothing."""
    parts = [jwt.b64url_encode(json.dumps(part).encode()) for part in (header, body)]
    return ".".join([*parts, jwt.b64url_encode(signature)])


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """bcrypt entries at the lowest cost: the tests check behaviour, not the cost."""
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}\n" for user, pw in users.items()]
    path.write_text("".join(lines))
    return path


def config_with(tmp_path: Path, auth: dict[str, Any], **extra: Any) -> Config:
    data = {
        "version": "0.1",
        "storage": {"inmemory": {}, "delete": {"enabled": True}},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/registry.db"},
        "auth": auth,
        **extra,
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return load_config(str(path), {})
