"""GameClient against a small in-process fake gateway (websockets server, no Django).

The fake implements just enough of the contract (welcome, seq'd outbox, acks, resume,
ping/pong, move/state replies) to exercise the SDK's I/O wiring; the real gateway is
tested end to end separately.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from gameclient import Backoff, ClientClosed, ConnectRefused, GameClient, GameError, SessionLost
from gameproto import (
    Ack,
    ClientMessage,
    CloseCode,
    Codec,
    Error,
    Move,
    Ok,
    Ping,
    Pong,
    ProtocolError,
    ServerMessage,
    ServerPing,
    ServerPong,
    State,
    StateReq,
    Welcome,
    decode_client,
    negotiate,
)

STEP_S = 2.0  # generous bound for anything that should happen "soon"


@dataclass
class Session:
    session_id: str
    player: str
    seq: int = 0
    acked: int = 0
    outbox: list[tuple[int, ServerMessage]] = field(default_factory=list)
    x: float = 0.0
    rev: int = 0


@dataclass
class Conn:
    params: dict[str, str]
    codec: Codec
    remote: Any
    received: list[ClientMessage] = field(default_factory=list)
    close_code: int | None = None


class FakeGateway:
    def __init__(self, *, heartbeat_s: float = 30.0) -> None:
        self.heartbeat_s = heartbeat_s
        self.sessions: dict[str, Session] = {}
        self.conns: list[Conn] = []
        self.live: list[ServerConnection] = []
        self.reject_next = 0  # refuse this many upgrades with 403
        self.reject_json: dict[str, Any] | None = None  # the refusal's JSON body, if any
        self.forget_sessions = False  # resume attempts get resumed:false
        self.replay_from_acked = True  # on resume re-send everything un-acked (dupes)
        self.answer_pings = False  # answer client pings with pong (the real gateway does)
        self.restored = False  # resumes say `restored` (as from another node's L2)
        self._ids = itertools.count(1)

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.reject_next:
            self.reject_next -= 1
            if self.reject_json is None:
                return conn.respond(HTTPStatus.FORBIDDEN, "ticket rejected\n")
            response = conn.respond(HTTPStatus.FORBIDDEN, json.dumps(self.reject_json))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        return None

    async def send(self, ws: ServerConnection, conn: Conn, msg: ServerMessage) -> None:
        await ws.send(conn.codec.encode(msg))

    async def push(self, ws: ServerConnection, conn: Conn, session: Session, **fields: Any) -> None:
        session.seq += 1
        msg = State(seq=session.seq, player_id=session.player, **fields)
        session.outbox.append((session.seq, msg))
        await self.send(ws, conn, msg)

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        params = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        codec = negotiate([ws.subprotocol] if ws.subprotocol else [])
        assert codec is not None
        conn = Conn(params=params, codec=codec, remote=ws.remote_address)
        self.conns.append(conn)
        self.live.append(ws)
        player = params["ticket"].split(":")[0]
        resume = params.get("resume")
        session = None if self.forget_sessions else self.sessions.get(resume or "")
        if session is not None:
            last_seq = int(params["last_seq"])
            start = session.acked if self.replay_from_acked else last_seq
            await self.send(
                ws,
                conn,
                Welcome(
                    session_id=session.session_id,
                    player_id=player,
                    node="fake",
                    heartbeat_s=self.heartbeat_s,
                    resumed=True,
                    last_seq=session.seq,
                    restored=self.restored,
                ),
            )
            for seq, msg in session.outbox:
                if seq > start:
                    await self.send(ws, conn, msg)
        else:
            session = Session(session_id=f"s{next(self._ids)}", player=player)
            self.sessions[session.session_id] = session
            await self.send(
                ws,
                conn,
                Welcome(
                    session_id=session.session_id,
                    player_id=player,
                    node="fake",
                    heartbeat_s=self.heartbeat_s,
                    resumed=False,
                    last_seq=0,
                ),
            )
            await self.push(ws, conn, session, x=0.0, y=0.0, rev=0)
        try:
            async for frame in ws:
                text, data = (frame, None) if isinstance(frame, str) else (None, frame)
                try:
                    incoming = decode_client(conn.codec, text, data)
                except ProtocolError as exc:
                    session.seq += 1
                    await self.send(ws, conn, exc.to_error(seq=session.seq))
                    continue
                conn.received.append(incoming)
                await self.on_message(ws, conn, session, incoming)
        except ConnectionClosed:
            pass
        conn.close_code = ws.close_code

    async def on_message(
        self, ws: ServerConnection, conn: Conn, session: Session, msg: ClientMessage
    ) -> None:
        acked = msg.seq if isinstance(msg, Ack) else msg.ack
        if acked is not None:
            session.acked = max(session.acked, acked)
            session.outbox = [(s, m) for s, m in session.outbox if s > acked]
        if isinstance(msg, Move):
            session.rev += 1
            await self.push(ws, conn, session, x=msg.x, y=msg.y, rev=session.rev, re=msg.id)
        elif isinstance(msg, StateReq):
            await self.push(ws, conn, session, x=0.0, y=0.0, rev=session.rev, re=msg.id)
        elif isinstance(msg, Ping) and self.answer_pings:
            await self.send(ws, conn, ServerPong(ts=msg.ts))


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[FakeGateway, str]]:
    fake = FakeGateway()
    async with serve(
        fake.handler,
        "127.0.0.1",
        0,
        subprotocols=["game.v1.json", "game.v1.msgpack"],  # type: ignore[list-item]
        process_request=fake.process_request,
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield fake, f"ws://127.0.0.1:{port}/ws/game/"


def tickets(player: str = "alice") -> tuple[list[str], Any]:
    issued: list[str] = []

    async def provider() -> str:
        ticket = f"{player}:{len(issued)}"
        issued.append(ticket)
        return ticket

    return issued, provider


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.01, cap_s=0.05, jitter=0.0)


async def eventually(predicate: Any, timeout: float = STEP_S) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def next_push(client: GameClient) -> Any:
    async with asyncio.timeout(STEP_S):
        return await client.recv()


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_connect_request_push_and_ack(gateway: tuple[FakeGateway, str], codec: str) -> None:
    fake, url = gateway
    _, provider = tickets()
    async with GameClient(url, provider, codec=codec) as client:
        welcome = await next_push(client)
        assert isinstance(welcome, Welcome)
        assert welcome.resumed is False
        assert client.session_id == welcome.session_id
        first = await next_push(client)
        assert isinstance(first, State)
        assert first.seq == 1
        reply = await client.request(Move(x=3, y=4))
        assert isinstance(reply, State)
        assert (reply.x, reply.y, reply.rev, reply.re) == (3.0, 4.0, 1, 1)
        reply = await client.request(StateReq(id="mine"))
        assert isinstance(reply, State)
        assert reply.re == "mine"
        session = fake.sessions[welcome.session_id]
        await eventually(lambda: session.acked == 3)
    conn = fake.conns[0]
    assert conn.codec.name == f"game.v1.{codec}"
    await eventually(lambda: conn.close_code == CloseCode.NORMAL)


async def test_requests_carry_the_cumulative_ack(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()
    # A long ack interval: only piggybacking can acknowledge within this test.
    async with GameClient(url, provider, ack_interval_s=60.0) as client:
        await next_push(client)  # welcome
        await next_push(client)  # state, seq 1
        await client.request(Move(x=1, y=1))
        await client.request(Move(x=2, y=2))
        moves = [m for m in fake.conns[0].received if isinstance(m, Move)]
        # The first request acknowledges the initial state, the second the first reply.
        assert [m.ack for m in moves] == [1, 2]
        assert not [m for m in fake.conns[0].received if isinstance(m, Ack)]


async def test_error_reply_raises_game_error(gateway: tuple[FakeGateway, str]) -> None:
    _, url = gateway
    _, provider = tickets()
    async with GameClient(url, provider) as client:
        with pytest.raises(GameError) as info:
            await client.request(Move(x=-5, y=1))
        assert (info.value.code, info.value.field) == ("invalid", "x")


async def test_answers_server_ping(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()
    async with GameClient(url, provider):
        await eventually(lambda: bool(fake.live))
        await fake.live[0].send(fake.conns[0].codec.encode(ServerPing(ts=12345)))
        await eventually(lambda: Pong(ts=12345) in fake.conns[0].received)


async def test_resume_after_drop_delivers_exactly_once(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    issued, provider = tickets()
    client = GameClient(url, provider, backoff=fast_backoff())
    await client.connect()
    try:
        assert isinstance(await next_push(client), Welcome)
        assert (await next_push(client)).seq == 1
        session = next(iter(fake.sessions.values()))
        await eventually(lambda: session.acked == 1)
        ws, conn = fake.live[0], fake.conns[0]
        await fake.push(ws, conn, session, x=1.0, y=1.0, rev=1)
        await fake.push(ws, conn, session, x=2.0, y=2.0, rev=2)
        assert [(await next_push(client)).seq for _ in range(2)] == [2, 3]
        # Drop TCP before the client's ack can arrive: the server re-sends 2 and 3.
        assert ws.transport is not None
        ws.transport.abort()
        await eventually(lambda: len(fake.conns) == 2)
        await eventually(lambda: bool(fake.conns[1].received))  # acked after the welcome
        assert fake.conns[1].params["resume"] == session.session_id
        assert fake.conns[1].params["last_seq"] == "3"
        assert issued == ["alice:0", "alice:1"]  # a fresh ticket per connect
        welcome = await next_push(client)
        assert isinstance(welcome, Welcome)
        assert welcome.resumed is True
        await fake.push(fake.live[1], fake.conns[1], session, x=4.0, y=4.0, rev=3)
        assert (await next_push(client)).seq == 4  # 2 and 3 were deduped
        assert client.last_seq == 4
    finally:
        await client.close()


async def test_new_session_after_failed_resume(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()
    client = GameClient(url, provider, backoff=fast_backoff())
    first = await client.connect()
    try:
        fake.forget_sessions = True
        await fake.live[0].close(CloseCode.GOING_AWAY)
        await eventually(lambda: len(fake.conns) == 2)
        pushes = [await next_push(client) for _ in range(4)]
        assert [type(p) for p in pushes] == [Welcome, State, Welcome, State]
        welcome, state = pushes[2], pushes[3]
        assert isinstance(welcome, Welcome)
        assert welcome.resumed is False
        assert welcome.session_id != first.session_id
        assert client.session_id == welcome.session_id
        assert state.seq == 1  # new session: seqs restart and are not deduped away
    finally:
        await client.close()


async def test_replaced_stops_reconnecting(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()
    client = GameClient(url, provider, backoff=fast_backoff())
    await client.connect()
    await eventually(lambda: bool(fake.live))
    await fake.live[0].close(CloseCode.REPLACED)
    pushes = [msg async for msg in client]  # ends when the client stops
    assert [type(p) for p in pushes] == [Welcome, State]
    assert client.close_code == CloseCode.REPLACED
    assert len(fake.conns) == 1
    with pytest.raises(ClientClosed):
        await client.request(StateReq())
    await client.close()


async def test_heartbeat_timeout_reconnects(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.heartbeat_s = 0.05  # and the fake never pings
    _, provider = tickets()
    async with GameClient(url, provider, backoff=fast_backoff()):
        await eventually(lambda: len(fake.conns) >= 2)
        await eventually(lambda: fake.conns[0].close_code == CloseCode.HEARTBEAT_TIMEOUT)
        assert fake.conns[1].params["resume"] == "s1"


async def test_a_silent_server_is_pinged_and_its_pong_keeps_the_connection(
    gateway: tuple[FakeGateway, str],
) -> None:
    fake, url = gateway
    fake.heartbeat_s = 0.05  # the fake never pings, but answers the client's pings
    fake.answer_pings = True
    _, provider = tickets()
    async with GameClient(url, provider, backoff=fast_backoff()):
        # Ten intervals: three times the window after which silence means dead.
        await eventually(lambda: sum(isinstance(m, Ping) for m in fake.conns[0].received) >= 10)
        assert len(fake.conns) == 1
        assert fake.conns[0].close_code is None


async def test_initial_connect_failure_propagates(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.reject_next = 1
    _, provider = tickets()
    client = GameClient(url, provider)
    with pytest.raises(ConnectRefused) as refused:
        await client.connect()
    assert (refused.value.status, refused.value.code) == (403, "http_403")  # no JSON reason
    assert isinstance(refused.value.__cause__, InvalidStatus)


async def test_a_refusal_names_the_servers_reason(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.reject_next = 1
    fake.reject_json = {"error": {"code": "ticket_expired", "message": "get a fresh one"}}
    _, provider = tickets()
    with pytest.raises(ConnectRefused) as refused:
        await GameClient(url, provider).connect()
    assert (refused.value.status, refused.value.code) == (403, "ticket_expired")
    assert refused.value.message == "get a fresh one"


async def test_reconnect_retries_rejections_then_gives_up(
    gateway: tuple[FakeGateway, str],
) -> None:
    fake, url = gateway
    _, provider = tickets()
    client = GameClient(url, provider, backoff=fast_backoff(), max_reconnect_attempts=3)
    await client.connect()
    fake.reject_next = 100
    await fake.live[0].close(CloseCode.GOING_AWAY)
    async with asyncio.timeout(STEP_S):
        pushes = [msg async for msg in client]
    assert len(pushes) == 2
    assert fake.reject_next == 97
    await client.close()


async def test_pending_request_fails_when_session_lost(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()
    client = GameClient(url, provider, backoff=fast_backoff())
    await client.connect()
    try:
        fake.forget_sessions = True

        async def swallow(ws: ServerConnection, conn: Conn, session: Session, msg: Any) -> None:
            await fake.live[0].close(CloseCode.GOING_AWAY)  # never answers, drops instead

        fake.on_message = swallow  # type: ignore[method-assign]
        with pytest.raises(SessionLost):
            await client.request(StateReq(), timeout=STEP_S)
    finally:
        await client.close()


async def test_a_request_whose_reply_a_restored_resume_lost_fails_and_others_go_on(
    gateway: tuple[FakeGateway, str],
) -> None:
    """Resumed on another node after the old one died (``restored``): a request sent
    before whose reply is not in the replay will never be answered: SessionLost."""
    fake, url = gateway
    _, provider = tickets()
    client = GameClient(url, provider, backoff=fast_backoff())
    await client.connect()
    try:
        fake.restored = True
        answer = fake.on_message

        async def swallow(ws: ServerConnection, conn: Conn, session: Session, msg: Any) -> None:
            fake.on_message = answer  # type: ignore[method-assign]
            await fake.live[0].close(CloseCode.GOING_AWAY)  # the node died with the reply

        fake.on_message = swallow  # type: ignore[method-assign]
        with pytest.raises(SessionLost):
            await client.request(StateReq(), timeout=STEP_S)
        assert client.welcome is not None
        assert (client.welcome.resumed, client.welcome.restored) == (True, True)
        # The session goes on: a new request is answered on it.
        reply = await client.request(Move(x=1, y=2), timeout=STEP_S)
        assert isinstance(reply, State)
        assert reply.seq == 2
    finally:
        await client.close()


async def test_source_address(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()
    async with GameClient(url, provider, source_address="127.0.0.2"):
        await eventually(lambda: bool(fake.conns))
        assert fake.conns[0].remote[0] == "127.0.0.2"


async def test_unknown_server_type_is_delivered_and_acked(
    gateway: tuple[FakeGateway, str],
) -> None:
    fake, url = gateway
    _, provider = tickets()
    async with GameClient(url, provider) as client:
        await next_push(client)
        await next_push(client)
        session = next(iter(fake.sessions.values()))
        session.seq += 1
        await fake.live[0].send(
            msgspec.json.encode({"type": "room.joined", "seq": session.seq, "room": "r"}).decode()
        )
        push = await next_push(client)
        assert (push.type, push.seq, push.body["room"]) == ("room.joined", 2, "r")
        await eventually(lambda: session.acked == 2)


async def test_server_error_without_request_is_pushed(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()
    async with GameClient(url, provider) as client:
        await next_push(client)
        await next_push(client)
        session = next(iter(fake.sessions.values()))
        session.seq += 1
        await fake.live[0].send(
            fake.conns[0].codec.encode(Error(seq=session.seq, code="busy", message="later"))
        )
        push = await next_push(client)
        assert isinstance(push, Error)
        assert push.code == "busy"


async def test_close_is_idempotent_and_ends_session_with_1000(
    gateway: tuple[FakeGateway, str],
) -> None:
    fake, url = gateway
    _, provider = tickets()
    client = GameClient(url, provider)
    await client.connect()  # and close at once, before its background tasks even ran
    async with asyncio.timeout(1.0):
        await asyncio.gather(client.close(), client.close())
    await client.close()
    assert not client.connected
    await eventually(lambda: fake.conns[0].close_code == CloseCode.NORMAL)
    # Pushes received before the close are still readable, then the stream ends.
    assert [type(p) for p in [msg async for msg in client]] == [Welcome, State]
    with pytest.raises(ClientClosed):
        await client.recv()


async def test_ok_reply(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    _, provider = tickets()

    async def reply_ok(ws: ServerConnection, conn: Conn, session: Session, msg: Any) -> None:
        if msg.id is not None:
            session.seq += 1
            await fake.send(ws, conn, Ok(seq=session.seq, re=msg.id))

    fake.on_message = reply_ok  # type: ignore[method-assign]
    async with GameClient(url, provider) as client:
        assert await client.request(StateReq(id=99)) == Ok(seq=2, re=99)


async def test_ticket_never_logged(
    gateway: tuple[FakeGateway, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, url = gateway
    _, provider = tickets("secret-ticket-value")
    with caplog.at_level(logging.DEBUG):
        async with GameClient(url, provider):
            pass
    client_log = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("gameclient")
    )  # (the fake server's own websockets.server logging is not ours to police)
    assert "GET /ws/game/?ticket=[redacted]" in client_log
    assert "secret-ticket-value" not in client_log
