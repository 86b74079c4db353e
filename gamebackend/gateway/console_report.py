"""What this process tells the operator console, and what the console tells it.

Every ``LIVE_INTERVAL_S`` the report samples the Prometheus metrics (``MetricsSampler``,
so the console shows the very counters ``/metrics`` exports), then writes this process's
live state to the console's store (``gamebackend/metrics/series.py``: Redis in the cluster
profile, this process's memory on one machine): totals and rates, its sessions, rooms,
deepest mailboxes and breakers. Every ``POINT_INTERVAL_S`` one point of the counters goes
into the store's hour of history (the dashboard's charts).

The console's commands come over the flow events channel (kind ``console``; Redis pub/sub
in the cluster, in-process on one machine), so every node hears them; the node that holds
the player acts: ``kick`` (close 4000 with the operator's reason; with ``block_until``
every node also refuses the player's upgrades until then), ``notice`` (a ``notice`` on the
player's reliable stream), ``describe`` (the session's detail, answered into the store).
Blocks are also reloaded from the database every ``BLOCK_REFRESH_S`` (a node that missed
the event or started later), and a blocked player still connected here is closed then
(4000, the block's reason). Plain kicks and notices are not retried: a node whose pub/sub
link is down when one is sent misses it (the sessions page shows whether the player is
still connected; send it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from asgiref.sync import sync_to_async

import gameproto as p
from gamebackend import metrics
from gamebackend.flow import events
from gamebackend.metrics.series import LIVE_INTERVAL_S, POINT_INTERVAL_S, SeriesStore
from gamebackend.moderation.selectors import player_blocks_active
from gamebackend.players.actor import actor_name

if TYPE_CHECKING:
    from gamebackend.gateway.runtime import Runtime
    from gamebackend.gateway.session import Session

logger = logging.getLogger(__name__)

EVENT_KIND: Final = "console"
# Sessions listed per process in its live state (the console searches these; a bigger
# node lists its longest-connected ones and says how many more it has).
SESSIONS_REPORTED: Final = 500
TOP_MAILBOXES: Final = 10
ROOMS_REPORTED: Final = 200
# Bound on asking the rooms for their stats in one report.
ROOM_STATS_TIMEOUT_S: Final = 1.0
BLOCK_REFRESH_S: Final = 10.0
# The request type whose latency the dashboard charts (the game's hot request).
LATENCY_REQUEST_TYPE: Final = "move"


class BlockList:
    """Players an operator blocked: player id -> until (epoch seconds)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def add(self, player_id: str, until: float) -> None:
        self._until[player_id] = max(until, self._until.get(player_id, 0.0))

    def replace(self, blocks: dict[str, float]) -> None:
        now = self._clock()
        merged = {pid: until for pid, until in self._until.items() if until > now}
        for pid, until in blocks.items():
            merged[pid] = max(until, merged.get(pid, 0.0))
        self._until = merged

    def until(self, player_id: str) -> str | None:
        """When the player's block ends (ISO 8601, UTC), or None when not blocked."""
        until = self._until.get(player_id)
        if until is None or until <= self._clock():
            return None
        return datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")


def _samples(metric: Any) -> list[Any]:
    return [s for family in metric.collect() for s in family.samples]


def _counter_total(metric: Any, **match: str) -> float:
    return sum(
        s.value
        for s in _samples(metric)
        if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in match.items())
    )


def _buckets(metric: Any, **match: str) -> list[tuple[float, float]]:
    """A histogram's (upper bound, cumulative count) pairs (of the labels in ``match``)."""
    return [
        (float(s.labels["le"]), s.value)
        for s in _samples(metric)
        if s.name.endswith("_bucket") and all(s.labels.get(k) == v for k, v in match.items())
    ]


def _quantile_ms(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float | None:
    """The ``q`` quantile (ms, a bucket's upper bound) of the observations between two reads."""
    prior = dict(before)
    deltas = [(le, count - prior.get(le, 0.0)) for le, count in after]
    total = deltas[-1][1] if deltas else 0.0
    if total <= 0:
        return None
    for le, count in deltas:
        if count >= q * total:
            return None if le == float("inf") else le * 1000.0
    return None


class ConsoleReport:
    def __init__(self, runtime: Runtime, store: SeriesStore, *, threaded: bool) -> None:
        self._rt = runtime
        self._store = store
        # Redis stores are written in a thread (their client blocks); memory ones in place.
        self._threaded = threaded
        self.blocks = BlockList()
        self._prev: dict[str, Any] | None = None
        self._prev_at = 0.0
        self._next_point = 0.0
        self._next_blocks = 0.0

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        events.handle_kind(EVENT_KIND, self.command)
        try:
            while True:
                try:
                    await self.report()
                except Exception:
                    # The console must never take the gateway down; the next round retries.
                    logger.exception("console report failed")
                await asyncio.sleep(LIVE_INTERVAL_S)
        finally:
            events.unhandle_kind(EVENT_KIND, self.command)

    async def _write(self, fn: Callable[..., None], *args: Any) -> None:
        if self._threaded:
            await asyncio.to_thread(fn, *args)
        else:
            fn(*args)

    async def report(self) -> None:
        rt = self._rt
        if not rt.flow.sync.started:
            # The rule sync carries the console's commands: run it before any player
            # connects (a failure is logged by the sync; the next round retries).
            with contextlib.suppress(Exception):
                await rt.flow.ready()
        rt.sampler.sample()
        now = time.time()
        if now >= self._next_blocks:
            self._next_blocks = now + BLOCK_REFRESH_S
            await self._refresh_blocks()
        counters = self._counters()
        rates = self._rates(counters, now)
        rooms = await self._rooms()
        totals = rt.system.totals()
        breakers = rt.flow.enforcement.breakers.snapshot()
        state = {
            "node": rt.system.node,
            "t": now,
            "connections": len(rt.hub.connections),
            "sessions_total": len(rt.hub.sessions),
            "rooms": len(rooms),
            "room_members": sum(int(r.get("members", 0)) for r in rooms),
            "flush_backlog": len(rt.flusher),
            "flush_lag_s": _age(rt.flusher.oldest_pending_at),
            "actors": totals["actors"],
            "restarts": totals["restarts"],
            "dead_letters": totals["dead_letters"],
            "watchdog_warnings": totals["slow_handlers"],
            "mailbox_rejected": totals["mailbox_rejected"],
            "top_mailboxes": rt.system.top_mailboxes(TOP_MAILBOXES),
            "breakers_not_closed": [b["name"] for b in breakers if b.get("state") != "closed"],
            "breakers": [_breaker(b, now) for b in breakers],
            "limits": rt.flow.enforcement.limiter.counters(),
            **rates,
            "sessions": self._sessions(),
            "room_list": rooms[:ROOMS_REPORTED],
        }
        await self._write(self._store.put_live, rt.system.node, state)
        if now >= self._next_point:
            self._next_point = now + POINT_INTERVAL_S
            point = {k: state[k] for k in _POINT_KEYS}
            point["breakers_not_closed"] = len(state["breakers_not_closed"])
            # Per rule (cumulative), for the limits page's per-second rates.
            point["limits"] = {
                f"{g['resource']}|{g['scope']}": [int(g["allowed"]), int(g["rejected"])]
                for g in state["limits"]
            }
            await self._write(self._store.put_point, rt.system.node, point)

    async def _refresh_blocks(self) -> None:
        try:
            active = await sync_to_async(player_blocks_active, thread_sensitive=False)()
        except Exception as exc:  # the last list stays in force; the next round retries
            logger.warning("loading player blocks failed: %r", exc)
            return
        self.blocks.replace({pid: block.until.timestamp() for pid, block in active.items()})
        # A node that missed the kick (its pub/sub link was down at the time) closes a
        # blocked player's connection here, with the block's reason, as the kick would have.
        hub = self._rt.hub
        for player_id, block in active.items():
            session = hub.by_player.get(player_id)
            if session is not None and not session.ended and session.conn is not None:
                reason = block.reason or "blocked by an operator"
                self._rt.spawn(hub.kick(session, reason), "console-block-kick")

    def _counters(self) -> dict[str, Any]:
        return {
            "in": _counter_total(metrics.MESSAGES_IN),
            "out": _counter_total(metrics.MESSAGES_OUT),
            "rejected": _counter_total(metrics.RATE_LIMIT_DECISIONS, decision="rejected"),
            # The dashboard's latency is the game's hot request, move.
            "latency": _buckets(metrics.REQUEST_SECONDS, type=LATENCY_REQUEST_TYPE),
        }

    def _rates(self, counters: dict[str, Any], now: float) -> dict[str, Any]:
        prev, prev_at = self._prev, self._prev_at
        self._prev, self._prev_at = counters, now
        if prev is None or now <= prev_at:
            return {
                "msgs_in_per_s": 0.0, "msgs_out_per_s": 0.0, "rejected_per_s": 0.0,
                "latency_p50_ms": None, "latency_p99_ms": None,
            }  # fmt: skip
        span = now - prev_at

        def rate(key: str) -> float:
            return round(max(0.0, counters[key] - prev[key]) / span, 2)

        return {
            "msgs_in_per_s": rate("in"),
            "msgs_out_per_s": rate("out"),
            "rejected_per_s": rate("rejected"),
            "latency_p50_ms": _quantile_ms(prev["latency"], counters["latency"], 0.50),
            "latency_p99_ms": _quantile_ms(prev["latency"], counters["latency"], 0.99),
        }

    async def _rooms(self) -> list[dict[str, Any]]:
        """Every local room's stats (setting the rooms' metrics on the way)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ROOM_STATS_TIMEOUT_S):
                return [_plain(r) for r in await self._rt.sampler.sample_rooms()]
        return []

    def _sessions(self) -> list[dict[str, Any]]:
        out = []
        for session in list(self._rt.hub.sessions.values())[:SESSIONS_REPORTED]:
            out.append(self._session_row(session))
        return out

    def _session_row(self, session: Session) -> dict[str, Any]:
        conn: Any = session.conn
        return {
            "player_id": session.player_id,
            "session_id": session.session_id,
            "node": self._rt.system.node,
            "connected": conn is not None,
            "connected_since": getattr(conn, "connected_at", None),
            "codec": getattr(getattr(conn, "codec", None), "name", None),
            "rtt_ms": getattr(conn, "rtt_ms", None),
            "outbox": len(session.outbox),
            "last_seq": session.outbox.last_seq,
            "msgs_in": getattr(conn, "n_in", 0),
            "msgs_out": getattr(conn, "n_out", 0),
            "rate_limited": getattr(conn, "n_limited", 0),
            "rooms": self._rt.hub.rooms_of(session.player_id),
        }

    # -- commands from the console ---------------------------------------------------------

    def command(self, event: dict[str, Any]) -> None:
        """A console command (on the event loop): act if this process holds the player."""
        action = event.get("action")
        if action == "close_room":
            self._close_room(str(event.get("room", "")))
            return
        player_id = str(event.get("player_id", ""))
        if action == "kick" and event.get("block_until"):
            self.blocks.add(player_id, float(event["block_until"]))
        session = self._rt.hub.by_player.get(player_id)
        if session is None:
            return
        self._rt.spawn(self._act(str(action), session, event), f"console-{action}")

    def _close_room(self, room: str) -> None:
        """Every member of ``room`` on this process leaves it (through their own actor, as
        a ``leave`` of theirs would) and hears why."""
        hub = self._rt.hub
        for player_id, state in list(hub.player_states.items()):
            if room not in state.rooms:
                continue
            ref = self._rt.system.lookup(actor_name(player_id))
            session = hub.by_player.get(player_id)
            if ref is None:
                continue
            with contextlib.suppress(Exception):  # a full mailbox: the room idles them out
                ref.tell(p.Leave(room=room))
            if session is not None:
                notice = p.Notice(seq=0, text=f"room {room} was closed by an operator")
                self._rt.spawn(session.emit(notice), "console-room-notice")

    async def _act(self, action: str, session: Session, event: dict[str, Any]) -> None:
        if action == "kick":
            await self._rt.hub.kick(session, str(event.get("reason") or "kicked by an operator"))
        elif action == "notice":
            text = str(event.get("text", ""))[: p.MAX_NOTICE_LENGTH]
            await session.emit(p.Notice(seq=0, text=text))
        elif action == "describe":
            await self._write(self._store.put_answer, str(event["key"]), self._detail(session))

    def _detail(self, session: Session) -> dict[str, Any]:
        conn: Any = session.conn
        record = self._rt.hub.live_record(session.player_id)
        recent = list(getattr(conn, "recent", None) or ())
        return {
            **self._session_row(session),
            "state": record,
            "recent": [
                {"at": m.at, "direction": m.direction, "type": m.tag, "bytes": m.size}
                for m in reversed(recent)
            ],
        }


_POINT_KEYS = (
    "t", "connections", "msgs_in_per_s", "msgs_out_per_s", "latency_p50_ms", "latency_p99_ms",
    "rooms", "room_members", "flush_lag_s", "flush_backlog", "dead_letters", "restarts",
    "rejected_per_s", "watchdog_warnings",
)  # fmt: skip


def _age(monotonic_at: float | None) -> float:
    return 0.0 if monotonic_at is None else round(time.monotonic() - monotonic_at, 3)


def _breaker(snapshot: dict[str, Any], now: float) -> dict[str, Any]:
    last = dict(snapshot.get("last_transition") or {})
    if last.get("at") is not None:
        last["wall_at"] = now - (time.monotonic() - float(last["at"]))
    return {
        "name": snapshot.get("name"),
        "state": snapshot.get("state"),
        "forced": snapshot.get("forced"),
        "window": snapshot.get("window"),
        "last_transition": last,
    }


def _plain(value: Any) -> Any:
    """JSON-safe copy (room stats may hold tuples and sets)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
