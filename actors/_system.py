"""ActorSystem: spawns, names, supervises (as root guardian), stops and reports on actors."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import secrets
import time
from types import TracebackType
from typing import Any, Final

from ._actor import Actor
from ._cell import ActorCell
from ._deadletters import DeadLetters
from ._deadlines import AskDeadlines
from ._errors import NameTaken
from ._lifecycle import CellLifecycle
from ._mailbox import DEFAULT_MAILBOX_SIZE, Overflow
from ._pid import PID, validate_id, validate_node
from ._ref import ActorRef, DeadRef, LocalActorRef
from ._remote import RemoteActorRef, RemoteTransport
from ._supervisor import DEFAULT_STRATEGY, OneForOne

logger = logging.getLogger("actors")

DEFAULT_NODE: Final = "local@127.0.0.1:0"
DEFAULT_CHANNEL_PREFIX: Final = "actors"
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0
# After the shutdown deadline, cancelled actor tasks get this long to unwind.
CANCEL_GRACE_S: Final = 1.0
# Timer deliveries into a full mailbox are counted; the warning is rate limited.
TIMER_OVERFLOW_LOG_INTERVAL_S: Final = 1.0


class ActorSystem:
    """All actors of one node (one process / event loop).

    `channel_layer` (optional) enables delivery to PIDs of other nodes; `default_mailbox_size`
    lets the host application wire its own setting without this package reading it.
    """

    def __init__(
        self,
        node: str = DEFAULT_NODE,
        *,
        default_mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        channel_layer: Any = None,
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
        supervisor: OneForOne | None = None,
    ) -> None:
        if default_mailbox_size < 1:
            raise ValueError("default_mailbox_size must be >= 1")
        self.node = validate_node(node)
        self.default_mailbox_size = default_mailbox_size
        self.dead_letters = DeadLetters()
        self.mailbox_rejected = 0
        self.mailbox_dropped = 0
        self.timers_dropped = 0
        self.slow_handlers = 0
        self._default_strategy = supervisor or DEFAULT_STRATEGY
        self._cells: dict[str, ActorCell] = {}
        self._retired = {"processed": 0, "failed": 0, "restarts": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: AskDeadlines | None = None
        # Random per-incarnation prefix: ids of a restarted node do not alias old PIDs.
        self._id_prefix = secrets.token_hex(2)
        self._next_id = itertools.count(1)
        self._closing = False
        self._closed = False
        self._timer_log_at = -TIMER_OVERFLOW_LOG_INTERVAL_S
        self._transport = (
            RemoteTransport(self, channel_layer, channel_prefix)
            if channel_layer is not None
            else None
        )

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("ActorSystem is not started: await system.start() first")
        return self._loop

    @property
    def deadlines(self) -> AskDeadlines:
        if self._deadlines is None:
            self._deadlines = AskDeadlines(self.loop)
        return self._deadlines

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("ActorSystem is bound to another event loop")
        if self._transport is not None:
            self._transport.start()

    async def start(self) -> None:
        """Bind to the running loop and start the remote receive loops (spawn does it too)."""
        if self._closing:
            raise RuntimeError("ActorSystem is shut down")
        self._bind()

    async def __aenter__(self) -> ActorSystem:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    @property
    def remote_channel(self) -> str | None:
        """The channel this node receives tells and asks on (None without a layer)."""
        return None if self._transport is None else self._transport.inbox

    # -- spawning and lookup --------------------------------------------------------------------

    async def spawn(
        self,
        cls: type[Actor],
        *args: Any,
        name: str | None = None,
        mailbox_size: int | None = None,
        overflow: Overflow = "reject",
        supervisor: OneForOne | None = None,
        _parent: ActorCell | None = None,
        **kwargs: Any,
    ) -> LocalActorRef:
        """Create an actor; `args`/`kwargs` go to its constructor (again on each restart).

        Returns at once: on_start runs in the actor's own task before its first message.
        A constructor exception propagates here and nothing is registered.
        """
        if self._closing:
            raise RuntimeError("ActorSystem is shut down")
        if not (isinstance(cls, type) and issubclass(cls, Actor)):
            raise TypeError(f"spawn needs an Actor subclass, got {cls!r}")
        self._bind()
        cells = self._cells
        if name is None:
            actor_id = f"{self._id_prefix}-{next(self._next_id):x}"
            while actor_id in cells:
                actor_id = f"{self._id_prefix}-{next(self._next_id):x}"
        else:
            actor_id = validate_id(name)
            if actor_id in cells:
                raise NameTaken(actor_id, self.node)
        cell = ActorCell(
            self,
            PID(self.node, actor_id),
            cls,
            args,
            kwargs or None,
            mailbox_size or self.default_mailbox_size,
            overflow,
            supervisor or self._default_strategy,
            _parent,
        )
        if _parent is not None:
            _parent.add_child(cell)
        cells[actor_id] = cell
        cell.start()
        return cell.ref

    def cell(self, actor_id: str) -> ActorCell | None:
        return self._cells.get(actor_id)

    def lookup(self, key: str | PID) -> ActorRef | None:
        """A ref by name, PID or str(PID); None for unknown or stopped local actors.

        A PID of another node gives a remote ref (liveness is not checked) when a channel
        layer is configured, else None.
        """
        if isinstance(key, PID):
            pid = key
        elif isinstance(key, str):
            if "/" not in key:
                cell = self._cells.get(key)
                return None if cell is None else cell.ref
            try:
                pid = PID.parse(key)
            except ValueError:
                return None
        else:
            raise TypeError(f"lookup takes a name, PID or PID string, got {type(key).__name__}")
        if pid.node == self.node:
            cell = self._cells.get(pid.id)
            return None if cell is None else cell.ref
        if self._transport is None:
            return None
        return RemoteActorRef(pid, self._transport)

    def ref_for(self, pid: PID | str) -> ActorRef:
        """A ref for any PID: local (a dead-letter ref if gone) or remote."""
        if isinstance(pid, str):
            pid = PID.parse(pid)
        if pid.node == self.node:
            cell = self._cells.get(pid.id)
            return DeadRef(pid, self.dead_letters) if cell is None else cell.ref
        if self._transport is None:
            raise RuntimeError(f"cannot reach {pid}: this ActorSystem has no channel_layer")
        return RemoteActorRef(pid, self._transport)

    # -- stopping -------------------------------------------------------------------------------

    def _local_cell(self, target: ActorRef | PID | str) -> ActorCell | None:
        if isinstance(target, ActorRef):
            target = target.pid
        if isinstance(target, str):
            target = PID.parse(target) if "/" in target else PID(self.node, target)
        if target.node != self.node:
            raise ValueError(f"can only stop local actors, not {target}")
        return self._cells.get(target.id)

    async def stop(self, target: ActorRef | PID | str) -> None:
        """Stop an actor and wait for its on_stop; a no-op if it is already gone.

        Called from the actor's own handler it only requests the stop (waiting would deadlock).
        """
        cell = self._local_cell(target)
        if cell is None:
            return
        cell.request_stop()
        if cell.stopped or asyncio.current_task() is cell.task:
            return
        # Shielded: a caller that gives up waiting must not cancel other waiters' future.
        await asyncio.shield(cell.stopped_future())

    async def shutdown(
        self,
        timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,  # noqa: ASYNC109 - API per spec
    ) -> None:
        """Stop every actor (children before parents), awaiting on_stop handlers until the
        deadline; then cancel what is left, stop remote delivery and fail pending asks."""
        if self._closed:
            return
        self._closing = True
        if self._loop is None:
            self._closed = True
            return
        loop = self._loop
        deadline = loop.time() + timeout
        cells = list(self._cells.values())
        for cell in cells:
            if cell._parent is None:
                cell.request_stop()
        waiting = [cell.stopped_future() for cell in cells if not cell.stopped]
        if waiting:
            await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()))
        stragglers = [cell for cell in cells if not cell.stopped]
        if stragglers:
            logger.warning(
                "shutdown: %d actor(s) did not stop within %gs, cancelling: %s",
                len(stragglers),
                timeout,
                ", ".join(str(cell.pid) for cell in stragglers[:10]),
            )
            tasks = [cell.task for cell in stragglers if cell.task is not None]
            for cell in stragglers:
                cell.force_stop(None)
            if tasks:
                await asyncio.wait(tasks, timeout=CANCEL_GRACE_S)
        if self._transport is not None:
            await self._transport.close(deadline)
        if self._deadlines is not None:
            self._deadlines.close()  # every ask has been answered or failed by now
        self._closed = True

    def running_tasks(self) -> set[asyncio.Task[None]]:
        """Every task this system owns right now (actor drain tasks and remote I/O)."""
        tasks = {cell.task for cell in self._cells.values() if cell.task is not None}
        if self._transport is not None:
            tasks |= self._transport.tasks
        return tasks

    # -- callbacks from cells ------------------------------------------------------------------

    def retire(self, cell: CellLifecycle) -> None:
        if self._cells.get(cell.pid.id) is cell:
            del self._cells[cell.pid.id]
        stats = cell.stats()
        retired = self._retired
        retired["processed"] += stats["processed"]
        retired["failed"] += stats["failed"]
        retired["restarts"] += stats["restarts"]

    def root_child_stopped(self, pid: PID, reason: BaseException | None, escalate: bool) -> None:
        """The root guardian is told about top-level actors that stopped; it only logs."""
        if reason is None:
            return
        if escalate:
            logger.error("actor %s escalated %r to the root guardian: stopped", pid, reason)
        else:
            logger.warning("actor %s stopped after failure: %r", pid, reason)

    def timer_overflow(self, pid: PID, msg: Any) -> None:
        self.timers_dropped += 1
        now = time.monotonic()
        if now - self._timer_log_at >= TIMER_OVERFLOW_LOG_INTERVAL_S:
            self._timer_log_at = now
            logger.warning(
                "timer message %s for %s dropped: mailbox full (%d timer drops so far)",
                type(msg).__name__,
                pid,
                self.timers_dropped,
            )

    def slow_handler(self, pid: PID, msg: Any, elapsed: float) -> None:
        self.slow_handlers += 1
        logger.warning(
            "slow handler: actor %s took %.1f ms for %s", pid, elapsed * 1000, type(msg).__name__
        )

    # -- introspection --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        actors = {str(cell.pid): cell.stats() for cell in self._cells.values()}
        return {"actors": actors, "totals": self.totals()}

    def totals(self) -> dict[str, int]:
        """System-wide counters (cheap: no per-actor dicts), e.g. for metrics."""
        totals: dict[str, int] = {
            "actors": len(self._cells),
            "processed": self._retired["processed"],
            "failed": self._retired["failed"],
            "restarts": self._retired["restarts"],
        }
        for cell in self._cells.values():
            stats = cell.stats()
            totals["processed"] += stats["processed"]
            totals["failed"] += stats["failed"]
            totals["restarts"] += stats["restarts"]
        totals.update(
            dead_letters=self.dead_letters.count,
            mailbox_rejected=self.mailbox_rejected,
            mailbox_dropped=self.mailbox_dropped,
            timers_dropped=self.timers_dropped,
            slow_handlers=self.slow_handlers,
        )
        if self._transport is not None:
            totals.update(self._transport.stats())
        return totals

    def top_mailboxes(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` deepest non-empty mailboxes: (actor id, depth), deepest first."""
        depths = ((actor_id, len(cell)) for actor_id, cell in self._cells.items())
        return [(a, d) for a, d in heapq.nlargest(n, depths, key=lambda item: item[1]) if d]

    def mailbox_depths(self) -> tuple[int, int]:
        """(messages waiting in all local mailboxes, the deepest mailbox)."""
        total = deepest = 0
        for cell in self._cells.values():
            depth = len(cell)
            total += depth
            if depth > deepest:
                deepest = depth
        return total, deepest

    def __repr__(self) -> str:
        return f"<ActorSystem {self.node} actors={len(self._cells)}>"
