from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import PID

_name = st.text(
    alphabet=st.characters(blacklist_characters="@/", blacklist_categories=("Z", "C")),
    min_size=1,
    max_size=20,
)
_host = st.one_of(
    st.from_regex(r"\A[a-z0-9.\-]{1,30}\Z"),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)
_port = st.integers(min_value=0, max_value=65535)
_actor_id = st.text(
    alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Z", "C")),
    min_size=1,
    max_size=40,
)


@given(name=_name, host=_host, port=_port, actor_id=_actor_id)
def test_str_parse_round_trip(name: str, host: str, port: int, actor_id: str) -> None:
    pid = PID(f"{name}@{host}:{port}", actor_id)
    text = str(pid)
    assert text == f"{name}@{host}:{port}/{actor_id}"
    parsed = PID.parse(text)
    assert parsed == pid
    assert hash(parsed) == hash(pid)
    assert (parsed.name, parsed.host, parsed.port) == (name, host, port)


@given(name=_name, host=_host, port=_port, actor_id=_actor_id)
def test_msgpack_round_trip(name: str, host: str, port: int, actor_id: str) -> None:
    pid = PID(f"{name}@{host}:{port}", actor_id)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(pid), type=PID) == pid


def test_example_format() -> None:
    pid = PID.parse("node-a@127.0.0.1:8000/player-42")
    assert pid.node == "node-a@127.0.0.1:8000"
    assert pid.id == "player-42"
    assert str(pid) == "node-a@127.0.0.1:8000/player-42"


def test_immutable_and_hashable() -> None:
    pid = PID("n@h:1", "a")
    with pytest.raises(AttributeError):
        pid.id = "b"  # type: ignore[misc]
    assert {pid: 1}[PID("n@h:1", "a")] == 1
    assert pid != PID("n@h:1", "b")
    assert not dataclasses.is_dataclass(pid)  # a msgspec Struct, cheap to build


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected 'name@host:port/actor-id'"),
        ("no-slash@h:1", "expected 'name@host:port/actor-id'"),
        ("n@h:1/", "invalid actor id"),
        ("n@h:1/a/b", "invalid actor id"),
        ("n@h:1/a b", "invalid actor id"),
        ("nohost/a", "invalid node"),
        ("n@h/a", "invalid node"),
        ("n@h:port/a", "invalid node"),
        ("@h:1/a", "invalid node"),
    ],
)
def test_parse_errors_are_clear_value_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        PID.parse(text)
    assert repr(text) in str(info.value)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="expected a string"):
        PID.parse(42)  # type: ignore[arg-type]
