"""Token verification (distribution's ``jwt.md`` and its access controller): which keys, algorithms and claims."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from registry.auth import jwt
from registry.auth.access import Access
from registry.auth.jwt import PrivateKey, TokenError
from registry.auth.token import TokenVerifier
from registry.auth.trust import TrustStore, key_id, load_jwks
from tests.auth.helpers import (
    ISSUER,
    SERVICE,
    certificate,
    claims,
    ec_key,
    forged,
    repo_access,
    rsa_key,
    token,
    x5c,
)

ALL = frozenset(jwt.ALGORITHMS)


def verifier(trust: TrustStore, algorithms: frozenset[str] = ALL) -> TokenVerifier:
    return TokenVerifier(ISSUER, SERVICE, trust, algorithms)


@pytest.fixture(scope="module")
def root() -> tuple[PrivateKey, Any]:
    key = rsa_key()
    return key, certificate(key, "root")


@pytest.mark.parametrize("make_key", [rsa_key, ec_key], ids=["RS256", "ES256"])
def test_a_token_signed_by_a_root_key_named_by_kid_carries_its_access(make_key: Any) -> None:
    key = make_key()
    trust = TrustStore(roots=[certificate(key, "root")])
    grants = verifier(trust).verify(token(key, claims([repo_access("a/b", "pull", "push")])))
    assert grants.subject == "alice"
    assert grants.allows(Access("repository", "a/b", "push"))
    assert not grants.allows(Access("repository", "a/b", "delete"))
    assert not grants.allows(Access("repository", "a/c", "pull"))


def test_rs384_es384_and_es512_verify_too() -> None:
    for key in (ec_key(), rsa_key()):
        assert verifier(TrustStore(keys={"k": key.public_key()})).verify(token(key, claims(), kid="k")) is not None
    from cryptography.hazmat.primitives.asymmetric import ec

    for curve in (ec.SECP384R1(), ec.SECP521R1()):
        key = ec.generate_private_key(curve)
        signed = token(key, claims(), kid="k")
        assert jwt.decode(signed).header["alg"] in ("ES384", "ES512")
        verifier(TrustStore(keys={"k": key.public_key()})).verify(signed)


def test_an_x5c_chain_through_an_intermediate_to_a_root(root: tuple[PrivateKey, Any]) -> None:
    root_key, root_cert = root
    middle_key = ec_key()
    middle = certificate(middle_key, "intermediate", (root_key, root_cert))
    leaf_key = ec_key()
    leaf = certificate(leaf_key, "signer", (middle_key, middle), ca=False)
    signed = token(leaf_key, claims([repo_access("x/y", "pull")]), x5c=x5c(leaf, middle))
    assert verifier(TrustStore(roots=[root_cert])).verify(signed).allows(Access("repository", "x/y", "pull"))


def test_an_x5c_chain_to_an_unknown_root_is_refused(root: tuple[PrivateKey, Any]) -> None:
    other_key = ec_key()
    other_root = certificate(other_key, "other root")
    leaf_key = ec_key()
    leaf = certificate(leaf_key, "signer", (other_key, other_root), ca=False)
    with pytest.raises(TokenError, match="trusted root"):
        verifier(TrustStore(roots=[root[1]])).verify(token(leaf_key, claims(), x5c=x5c(leaf)))


def test_an_x5c_leaf_whose_key_did_not_sign_is_refused(root: tuple[PrivateKey, Any]) -> None:
    leaf = certificate(ec_key(), "signer", root, ca=False)
    with pytest.raises(TokenError, match="signature|match"):
        verifier(TrustStore(roots=[root[1]])).verify(token(ec_key(), claims(), x5c=x5c(leaf)))


@pytest.mark.parametrize("chain", [[], "abc", ["!!!"], [1], ["AAAA"]])
def test_a_malformed_x5c_is_invalid(root: tuple[PrivateKey, Any], chain: object) -> None:
    with pytest.raises(TokenError):
        verifier(TrustStore(roots=[root[1]])).verify(token(root[0], claims(), x5c=chain))


def test_a_jwk_header_is_accepted_only_for_a_trusted_key(root: tuple[PrivateKey, Any]) -> None:
    key = ec_key()
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64int(numbers.x, 32), "y": _b64int(numbers.y, 32)}
    signed = token(key, claims(), jwk=jwk)
    with pytest.raises(TokenError, match="not a trusted key"):
        verifier(TrustStore(roots=[root[1]])).verify(signed)
    verifier(TrustStore(keys={key_id(key.public_key()): key.public_key()})).verify(signed)


def _b64int(value: int, size: int) -> str:
    return jwt.b64url_encode(value.to_bytes(size, "big"))


def test_keys_from_a_jwks_file_by_their_kid(tmp_path: Path) -> None:
    key = rsa_key()
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": "signer-1", "n": _b64int(numbers.n, 256), "e": _b64int(numbers.e, 3)}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    trust = TrustStore(keys=load_jwks(str(path)))
    verifier(trust).verify(token(key, claims(), kid="signer-1"))
    with pytest.raises(TokenError):
        verifier(trust).verify(token(key, claims(), kid="signer-2"))


@pytest.mark.parametrize("alg", ["none", "HS256", "PS256", None, 5])
def test_algorithms_outside_the_allow_list_are_refused(root: tuple[PrivateKey, Any], alg: object) -> None:
    header = {"typ": "JWT", "alg": alg, "kid": key_id(root[0].public_key())}
    with pytest.raises(TokenError, match="algorithm"):
        verifier(TrustStore(roots=[root[1]])).verify(forged(header, claims(), b""))


def test_signingalgorithms_narrows_the_accepted_algorithms() -> None:
    key = ec_key()
    trust = TrustStore(keys={"k": key.public_key()})
    with pytest.raises(TokenError, match="algorithm"):
        verifier(trust, frozenset({"RS256"})).verify(token(key, claims(), kid="k"))


def test_an_rs_header_over_an_ec_key_is_refused() -> None:
    key = ec_key()
    signed = token(key, claims(), kid="k")
    head, body, signature = signed.split(".")
    header = jwt.decode(signed).header | {"alg": "RS256"}
    swapped = f"{jwt.b64url_encode(json.dumps(header).encode())}.{body}.{signature}"
    with pytest.raises(TokenError):
        verifier(TrustStore(keys={"k": key.public_key()})).verify(swapped)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"iss": "someone else"}, "issuer"),
        ({"aud": "other"}, "another service"),
        ({"aud": ["other", 5]}, "another service"),
        ({"exp": None}, "expired"),
        ({"exp": "soon"}, "number"),
        ({"exp": True}, "number"),
        ({"nbf": time.time() + 600}, "not valid yet"),
        ({"access": "everything"}, "access"),
        ({"access": [{"type": "repository", "name": 5}]}, "access"),
        ({"access": ["pull"]}, "access"),
    ],
)
def test_claims_that_do_not_hold_are_invalid(overrides: dict[str, Any], message: str) -> None:
    key = ec_key()
    with pytest.raises(TokenError, match=message):
        verifier(TrustStore(keys={"k": key.public_key()})).verify(token(key, claims(**overrides), kid="k"))


def test_exp_and_nbf_have_a_minute_of_leeway() -> None:
    key = ec_key()
    check = verifier(TrustStore(keys={"k": key.public_key()}))
    now = time.time()
    check.verify(token(key, claims(exp=int(now) - 30, nbf=int(now) + 30), kid="k"))
    with pytest.raises(TokenError, match="expired"):
        check.verify(token(key, claims(exp=int(now) - 90), kid="k"))


def test_an_audience_list_that_names_the_service_is_accepted() -> None:
    key = ec_key()
    verifier(TrustStore(keys={"k": key.public_key()})).verify(token(key, claims(aud=["x", SERVICE]), kid="k"))


@pytest.mark.parametrize(
    "text", ["", "a.b", "a.b.c.d", "!!.e30.e30", "e30.e30.e30", "W10.e30.", "bm90IGpzb24.e30.", "é.é.é", "a" * 70000]
)
def test_malformed_tokens_are_invalid(text: str) -> None:
    with pytest.raises(TokenError):
        verifier(TrustStore(keys={"k": ec_key().public_key()})).verify(text)


def test_the_libtrust_key_id_has_twelve_groups_of_four() -> None:
    kid = key_id(ec_key().public_key())
    groups = kid.split(":")
    assert len(groups) == 12 and all(len(g) == 4 and g.isalnum() and g.isupper() or g.isdigit() for g in groups)
