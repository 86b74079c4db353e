"""The shapes of player credentials (pure logic)."""

from __future__ import annotations

import pytest

from gamebackend.accounts.credentials import (
    device_id_check,
    digest,
    password_shape,
    refresh_token_join,
    refresh_token_new,
    refresh_token_split,
    username_normalize,
)
from gamebackend.accounts.errors import BadRefreshToken, Invalid


@pytest.mark.parametrize(
    ("raw", "stored"), [("Ann", "ann"), ("a.b-c_9", "a.b-c_9"), ("X" * 32, "x" * 32)]
)
def test_usernames_are_case_insensitive(raw: str, stored: str) -> None:
    assert username_normalize(raw) == stored


@pytest.mark.parametrize(
    "raw", ["ab", "x" * 33, "has space", "ünï", "semi;colon", "", None, 5, ["a"]]
)
def test_bad_usernames_name_the_field(raw: object) -> None:
    with pytest.raises(Invalid) as info:
        username_normalize(raw)
    assert info.value.field == "username"
    assert info.value.status == 400


@pytest.mark.parametrize("raw", ["0123456789", "x" * 128, "A1b2-C3d4:E5f6/G7h8", "~!@#$%^&*()"])
def test_device_ids_of_10_to_128_visible_characters(raw: str) -> None:
    assert device_id_check(raw) == raw


@pytest.mark.parametrize(
    "raw", ["012345678", "x" * 129, "with space1", "tab\there12", "ünïcodé-id", None, 1234567890]
)
def test_bad_device_ids_name_the_field(raw: object) -> None:
    with pytest.raises(Invalid) as info:
        device_id_check(raw)
    assert info.value.field == "device_id"


@pytest.mark.parametrize("raw", [None, "", 7, "x" * 1025])
def test_bad_passwords_name_the_field(raw: object) -> None:
    with pytest.raises(Invalid) as info:
        password_shape(raw)
    assert info.value.field == "password"


def test_refresh_tokens_round_trip_and_are_random() -> None:
    public_id, secret = refresh_token_new()
    token = refresh_token_join(public_id, secret)
    assert refresh_token_split(token) == (public_id, secret)
    assert refresh_token_new() != (public_id, secret)
    assert len(digest(secret)) == 64
    assert digest(secret) != secret


@pytest.mark.parametrize(
    "raw", ["", "nodot", "a.b", "x" * 20 + ".", "." + "y" * 43, "x" * 20 + ".y!" + "y" * 40]
)
def test_malformed_refresh_tokens_are_bad_tokens(raw: str) -> None:
    with pytest.raises(BadRefreshToken):
        refresh_token_split(raw)


def test_a_missing_refresh_token_is_invalid() -> None:
    with pytest.raises(Invalid) as info:
        refresh_token_split(None)
    assert info.value.field == "refresh_token"
