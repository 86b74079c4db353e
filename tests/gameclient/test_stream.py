"""Pure session bookkeeping of the SDK: dedupe, cumulative acks, heartbeat, requests."""

from __future__ import annotations

import pytest

from gameclient import GameError
from gameclient._errors import ClientClosed, SequenceGap, SessionLost
from gameclient._stream import (
    ACK_BATCH_MAX,
    HeartbeatMonitor,
    InboundStream,
    PendingRequests,
    build_url,
    should_reconnect,
)
from gameproto import CloseCode, Error, Ok, State


def test_dedupe_delivers_each_seq_once() -> None:
    stream = InboundStream()
    assert [stream.accept(seq) for seq in (1, 2, 3)] == [True, True, True]
    # A resume re-sends from the server's last ack: duplicates are dropped.
    assert [stream.accept(seq) for seq in (2, 3, 4)] == [False, False, True]
    assert stream.delivered == 4


def test_gap_raises() -> None:
    stream = InboundStream()
    stream.accept(1)
    with pytest.raises(SequenceGap):
        stream.accept(3)
    assert stream.delivered == 1


def test_cumulative_acks() -> None:
    stream = InboundStream()
    assert stream.take_ack() is None
    for seq in range(1, 6):
        stream.accept(seq)
    assert stream.unacked == 5
    assert stream.take_ack() == 5
    assert stream.take_ack() is None
    stream.accept(6)
    assert stream.take_ack() == 6


def test_ack_urgent_after_batch() -> None:
    stream = InboundStream()
    for seq in range(1, ACK_BATCH_MAX):
        stream.accept(seq)
    assert not stream.ack_urgent()
    stream.accept(ACK_BATCH_MAX)
    assert stream.ack_urgent()
    stream.take_ack()
    assert not stream.ack_urgent()


def test_resume_reacks_and_new_session_resets() -> None:
    stream = InboundStream()
    for seq in (1, 2):
        stream.accept(seq)
    stream.take_ack()
    stream.on_resumed()
    assert stream.take_ack() == 2  # tell the new connection what we have
    stream.reset()
    assert stream.delivered == 0
    assert stream.accept(1)


def test_heartbeat_monitor() -> None:
    monitor = HeartbeatMonitor(15.0, now=100.0, misses=3)
    assert not monitor.is_dead(100.0 + 45.0)  # slack absorbs the server's timer jitter
    assert monitor.is_dead(100.0 + 15.0 * 3.1)
    monitor.on_frame(130.0)  # any server frame, not only pings
    assert not monitor.is_dead(170.0)
    assert monitor.deadline == pytest.approx(130.0 + 46.5)


def test_heartbeat_monitor_pings_a_silent_server_once_per_interval() -> None:
    monitor = HeartbeatMonitor(15.0, now=100.0, misses=3)
    assert not monitor.ping_due(114.0)
    assert monitor.ping_due(115.0)
    monitor.on_ping_sent(115.0)
    assert not monitor.ping_due(129.0)  # one ping per silent interval
    assert monitor.ping_due(130.0)
    monitor.on_frame(131.0)  # the server answered: the interval restarts from its frame
    assert monitor.ping_at == pytest.approx(146.0)


async def test_pending_requests_resolve_and_errors() -> None:
    pending = PendingRequests()
    first, second = pending.new_id(), pending.new_id()
    assert (first, second) == (1, 2)
    ok_future = pending.add(first)
    err_future = pending.add("s")
    with pytest.raises(ValueError, match="in flight"):
        pending.add(first)
    assert pending.resolve(first, Ok(seq=1, re=first))
    assert (await ok_future) == Ok(seq=1, re=first)
    assert not pending.resolve(first, Ok(seq=2, re=first))  # answered exactly once
    error = Error(code="rate_limited", message="slow", re="s", retry_after_ms=300, field=None)
    assert pending.resolve("s", error)
    with pytest.raises(GameError) as info:
        await err_future
    assert (info.value.code, info.value.retry_after_ms) == ("rate_limited", 300)
    assert len(pending) == 0


async def test_pending_fail_sent_keeps_unsent() -> None:
    pending = PendingRequests()
    sent = pending.add(1)
    unsent = pending.add(2)
    pending.mark_sent(1)
    pending.fail_sent(SessionLost())
    with pytest.raises(SessionLost):
        await sent
    assert not unsent.done()
    assert pending.resolve(2, State(seq=1, re=2, player_id="p", x=0, y=0, rev=0))
    assert (await unsent).re == 2  # type: ignore[attr-defined]
    fail_me = pending.add(3)
    pending.fail_all(ClientClosed("bye"))
    with pytest.raises(ClientClosed):
        await fail_me


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (CloseCode.NORMAL, False),
        (CloseCode.KICKED, False),
        (CloseCode.REPLACED, False),
        (CloseCode.GOING_AWAY, True),
        (CloseCode.HEARTBEAT_TIMEOUT, True),
        (CloseCode.OUTBOX_FULL, True),
        (1006, True),
        (None, True),
    ],
)
def test_reconnect_policy(code: int | None, expected: bool) -> None:
    assert should_reconnect(code) is expected


def test_build_url() -> None:
    assert build_url("ws://h:1/ws/game/", "t.k.n") == "ws://h:1/ws/game/?ticket=t.k.n"
    assert (
        build_url("ws://h:1/ws/game/?v=2", "a+b/c", resume="s-1", last_seq=7)
        == "ws://h:1/ws/game/?v=2&ticket=a%2Bb%2Fc&resume=s-1&last_seq=7"
    )


def test_a_notice_decodes_as_a_typed_message() -> None:
    import gameproto as p

    text = '{"type":"notice","seq":3,"text":"maintenance at noon"}'
    msg = p.decode_server(p.JSON_CODEC, text, None)
    assert msg == p.Notice(seq=3, text="maintenance at noon")
