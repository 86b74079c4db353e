from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamebackend.gateway.outbox import Outbox, OutboxFull


@dataclass
class Msg:
    body: int
    seq: int = 0


def test_push_numbers_from_one() -> None:
    box = Outbox(limit=10)
    assert [box.push(Msg(i)) for i in range(3)] == [1, 2, 3]
    assert box.last_seq == 3
    assert len(box) == 3


def test_ack_is_cumulative_and_ignores_unsent() -> None:
    box = Outbox(limit=10)
    for i in range(5):
        box.push(Msg(i))
    assert box.ack(3)
    assert [m.seq for m in box.replay_after(3) or []] == [4, 5]
    assert not box.ack(9)
    assert box.acked_seq == 3
    assert box.ack(1)  # an old ack changes nothing
    assert box.acked_seq == 3


def test_full_outbox_refuses_more() -> None:
    box = Outbox(limit=2)
    box.push(Msg(1))
    box.push(Msg(2))
    assert box.full
    with pytest.raises(OutboxFull):
        box.push(Msg(3))
    box.ack(1)
    assert box.push(Msg(3)) == 3


def test_replay_cannot_reach_back_past_acknowledged() -> None:
    box = Outbox(limit=10)
    for i in range(4):
        box.push(Msg(i))
    box.ack(2)
    assert box.replay_after(1) is None
    assert box.replay_after(5) is None
    assert box.replay_after(4) == []


@given(
    total=st.integers(min_value=0, max_value=60),
    acks=st.lists(st.integers(min_value=0, max_value=70), max_size=10),
    resume_at=st.integers(min_value=0, max_value=70),
)
def test_replay_is_exactly_the_unseen_suffix(total: int, acks: list[int], resume_at: int) -> None:
    box = Outbox(limit=100)
    for i in range(total):
        box.push(Msg(i))
    for seq in acks:
        box.ack(seq)
    replay = box.replay_after(resume_at)
    if resume_at < box.acked_seq or resume_at > total:
        assert replay is None
    else:
        # Nothing lost, nothing duplicated, original numbers, in order.
        assert [m.seq for m in replay or []] == list(range(resume_at + 1, total + 1))
