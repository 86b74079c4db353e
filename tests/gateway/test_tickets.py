"""Connect tickets: verification rules, anti-replay stores, redaction (no Django)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import jwt
import pytest

from gamebackend.gateway.replay import LocalReplayStore
from gamebackend.gateway.tickets import (
    TicketClaims,
    TicketRejected,
    check_ticket,
    redact_ticket,
    verify_ticket,
)
from gameproto.tickets import mint_ticket

# 64+ bytes so PyJWT has no key-length warning even when a test signs with HS512.
SECRET = "test-secret-" + "s" * 64
OTHER_SECRET = "other-secret-" + "o" * 64
NOW = 1_700_000_000.0


def make(claims: dict[str, Any], *, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "player-1", "iat": int(NOW), "exp": int(NOW) + 30, "jti": "j1"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def reason(token: str, **kwargs: Any) -> str:
    with pytest.raises(TicketRejected) as info:
        verify_ticket(token, secret=SECRET, now=kwargs.pop("now", NOW), **kwargs)
    return info.value.reason


def unique_jti() -> str:
    return f"test-{uuid.uuid4().hex}"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# --- mint / verify -------------------------------------------------------------------


def test_mint_and_verify() -> None:
    token = mint_ticket(secret=SECRET, sub="p:1", ttl_s=25, now=NOW)
    got = verify_ticket(token, secret=SECRET, now=NOW + 1)
    assert got.sub == "p:1"
    assert (got.iat, got.exp) == (NOW, NOW + 25)
    assert 0 < len(got.jti) <= 128
    other = verify_ticket(mint_ticket(secret=SECRET, sub="p:1", now=NOW), secret=SECRET, now=NOW)
    assert other.jti != got.jti
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_mint_rejects_bad_sub() -> None:
    with pytest.raises(ValueError, match="sub"):
        mint_ticket(secret=SECRET, sub="has space")


def test_bad_signature() -> None:
    assert reason(make(claims(), secret=OTHER_SECRET)) == "bad_signature"
    token = make(claims())
    head, _body, sig = token.split(".")
    tampered_body = _b64(claims(sub="someone-else"))
    assert reason(f"{head}.{tampered_body}.{sig}") == "bad_signature"


def test_alg_none_rejected() -> None:
    header = _b64({"alg": "none", "typ": "JWT"})
    assert reason(f"{header}.{_b64(claims())}.") == "bad_algorithm"
    header = _b64({"alg": "None", "typ": "JWT"})
    assert reason(f"{header}.{_b64(claims())}.") == "bad_algorithm"


@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
def test_other_hmac_algorithms_rejected(algorithm: str) -> None:
    assert reason(make(claims(), algorithm=algorithm)) == "bad_algorithm"


def test_missing_alg_header_rejected() -> None:
    header = _b64({"typ": "JWT"})
    assert reason(f"{header}.{_b64(claims())}.abc") == "bad_algorithm"


def test_expired() -> None:
    token = make(claims(exp=int(NOW) + 10))
    assert verify_ticket(token, secret=SECRET, now=NOW + 9.9).sub == "player-1"
    assert reason(token, now=NOW + 10) == "expired"
    assert reason(token, now=NOW + 11) == "expired"


# The iat window on its own (a lifetime cap high enough not to interfere).
@pytest.mark.parametrize("offset", [-30, -29, 0, 29, 30])
def test_iat_within_window_accepted(offset: int) -> None:
    token = make(claims(iat=int(NOW) + offset, exp=int(NOW) + 120))
    got = verify_ticket(token, secret=SECRET, now=NOW, max_lifetime_s=3600)
    assert isinstance(got, TicketClaims)


@pytest.mark.parametrize("offset", [-31, 31, 3600, -3600])
def test_iat_outside_window_stale(offset: int) -> None:
    token = make(claims(iat=int(NOW) + offset, exp=int(NOW) + 3601 + abs(offset)))
    assert reason(token, max_lifetime_s=7200 + 2 * abs(offset)) == "stale_iat"


@pytest.mark.parametrize("lifetime", [31, 60, 365 * 86400])
def test_lifetime_above_the_cap_is_refused(lifetime: int) -> None:
    token = make(claims(exp=int(NOW) + lifetime))
    assert reason(token) == "lifetime_too_long"
    assert reason(token, max_lifetime_s=lifetime - 1) == "lifetime_too_long"
    assert verify_ticket(token, secret=SECRET, now=NOW, max_lifetime_s=lifetime).sub


def test_lifetime_at_the_cap_is_good_until_exp() -> None:
    token = mint_ticket(secret=SECRET, sub="p", ttl_s=30, now=NOW)
    assert verify_ticket(token, secret=SECRET, now=NOW + 29.9, max_lifetime_s=30).sub == "p"
    assert reason(token, now=NOW + 30, max_lifetime_s=30) == "expired"


def test_exp_not_after_iat_is_malformed() -> None:
    assert reason(make(claims(exp=int(NOW)))) == "malformed_claim"
    assert reason(make(claims(exp=int(NOW) - 5))) == "malformed_claim"


def test_max_age_is_configurable() -> None:
    token = make(claims(iat=int(NOW) - 10, exp=int(NOW) + 10))
    assert reason(token, max_age_s=5) == "stale_iat"
    assert verify_ticket(token, secret=SECRET, now=NOW, max_age_s=10).sub == "player-1"


@pytest.mark.parametrize("claim", ["sub", "iat", "exp", "jti"])
def test_missing_claim(claim: str) -> None:
    assert reason(make(claims(**{claim: ...}))) == "missing_claim"
    assert reason(make(claims(**{claim: None}))) == "missing_claim"


@pytest.mark.parametrize(
    "override",
    [
        {"sub": ""},
        {"sub": "a" * 65},
        {"sub": "has space"},
        {"sub": "semi;colon"},
        {"sub": "ünïcode"},
        {"sub": 42},
        {"sub": ["a"]},
        {"jti": ""},
        {"jti": "j" * 129},
        {"jti": 5},
        {"iat": "yesterday"},
        {"iat": True},
        {"exp": "tomorrow"},
        {"exp": [1]},
    ],
    ids=repr,
)
def test_malformed_claim(override: dict[str, Any]) -> None:
    assert reason(make(claims(**override))) == "malformed_claim"


def test_valid_claim_edges() -> None:
    token = make(claims(sub="A" * 64, jti="j" * 128))
    assert verify_ticket(token, secret=SECRET, now=NOW).sub == "A" * 64
    token = make(claims(sub="a.b:c_d-e", iat=NOW - 0.5, exp=NOW + 0.5))
    assert verify_ticket(token, secret=SECRET, now=NOW).sub == "a.b:c_d-e"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "....", "é.é.é"])
def test_malformed_token(token: str) -> None:
    assert reason(token) == "malformed"


def test_payload_not_an_object_is_malformed() -> None:
    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = base64.urlsafe_b64encode(b"[1,2]").rstrip(b"=").decode()
    signing_input = f"{header}.{body}".encode()
    sig = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256).sign(
        signing_input, SECRET.encode()
    )
    token = f"{header}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    assert reason(token) == "malformed"


def test_real_clock_default() -> None:
    token = mint_ticket(secret=SECRET, sub="p")
    assert verify_ticket(token, secret=SECRET).sub == "p"


# --- replay --------------------------------------------------------------------------


async def test_check_ticket_local_replay() -> None:
    store = LocalReplayStore(clock=lambda: NOW)
    token = mint_ticket(secret=SECRET, sub="p1", now=NOW, jti=unique_jti())
    first = await check_ticket(token, secret=SECRET, store=store, max_age_s=30, now=NOW)
    assert first.sub == "p1"
    with pytest.raises(TicketRejected) as info:
        await check_ticket(token, secret=SECRET, store=store, max_age_s=30, now=NOW + 1)
    assert info.value.reason == "replayed"


async def test_rejected_ticket_does_not_burn_jti() -> None:
    store = LocalReplayStore(clock=lambda: NOW)
    jti = unique_jti()
    forged = make(claims(jti=jti), secret=OTHER_SECRET)
    with pytest.raises(TicketRejected):
        await check_ticket(forged, secret=SECRET, store=store, now=NOW)
    assert await store.claim(jti, NOW + 60)


# --- redaction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ticket=abc.def.ghi", "ticket=[redacted]"),
        ("ticket=abc&resume=s1&last_seq=4", "ticket=[redacted]&resume=s1&last_seq=4"),
        ("resume=s1&ticket=abc", "resume=s1&ticket=[redacted]"),
        ("ticket=a&ticket=b", "ticket=[redacted]&ticket=[redacted]"),
        ("%74icket=abc", "%74icket=[redacted]"),
        ("ticket=", "ticket=[redacted]"),
        ("ticket", "ticket"),
        ("tickets=abc&xticket=1", "tickets=abc&xticket=1"),
        ("", ""),
    ],
)
def test_redact_ticket(query: str, expected: str) -> None:
    assert redact_ticket(query) == expected
    assert redact_ticket(query.encode()) == expected


def test_redacted_output_never_contains_token() -> None:
    token = mint_ticket(secret=SECRET, sub="p", now=NOW)
    assert token not in redact_ticket(f"ticket={token}&resume=x")
