"""The Actor base class users subclass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._mailbox import Overflow
    from ._pid import PID
    from ._ref import ActorRef, LocalActorRef
    from ._supervisor import OneForOne
    from ._system import ActorSystem
    from ._timers import Timer


class Actor:
    """Subclass and override the async hooks; never call them yourself.

    The runtime sets `_cell` before `__init__` runs, so `self.pid`, `self.ref` and
    `self.system` already work in the constructor. Instances are only touched by their own
    actor task: state needs no locks.
    """

    # Subclasses without __slots__ get a __dict__ as usual; declaring __slots__ in a
    # subclass keeps per-instance memory minimal for very many idle actors.
    __slots__ = ("_cell",)

    _cell: ActorCell

    # Message types handled eagerly: told to an idle actor (no handler running, nothing
    # queued), the handler starts at once, inside the teller's call, the way asyncio's
    # eager tasks start; only a handler that has to wait gets a task, and the actor stays
    # busy until it ends. For messages told at a steady rate to many actors whose handler
    # seldom waits (a room's ticks): it saves the task each message would otherwise start.
    # Until its first real wait such a handler runs in the teller's stack and context, so
    # it must not call asyncio.current_task() or enter asyncio.timeout() before it.
    eager_messages: ClassVar[tuple[type, ...]] = ()

    async def on_start(self) -> None:
        """Runs in the actor's task before the first message (and after each restart)."""

    async def on_receive(self, msg: Any) -> Any:
        """Handle one message; the return value answers an `ask` (ignored for tells)."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(msg).__name__}")

    async def on_stop(self) -> None:
        """Terminate: runs once when the actor stops for good (not on restart)."""

    async def on_failure(self, exc: BaseException, msg: Any) -> None:
        """Called on the failing instance before its supervisor decides; `msg` is None when
        on_start (or a child escalation) failed."""

    # -- context -------------------------------------------------------------------------

    @property
    def ref(self) -> LocalActorRef:
        return self._cell.ref

    @property
    def pid(self) -> PID:
        return self._cell.pid

    @property
    def system(self) -> ActorSystem:
        return self._cell.system

    @property
    def sender(self) -> ActorRef | None:
        """Sender of the message being handled, when the teller passed `sender=`."""
        return self._cell.sender

    @property
    def children(self) -> list[LocalActorRef]:
        return self._cell.children()

    def schedule_once(self, delay: float, msg: Any) -> Timer:
        """Deliver `msg` to this actor after `delay` seconds (cancelled when it stops)."""
        return self._cell.schedule(delay, msg, None)

    def schedule_every(self, interval: float, msg: Any, first_delay: float | None = None) -> Timer:
        """Deliver `msg` every `interval` seconds at a fixed rate (ticks due at
        start + n * interval, so handler time and loop lag never accumulate as drift)."""
        if interval <= 0:
            raise ValueError("interval must be > 0")
        return self._cell.schedule(interval if first_delay is None else first_delay, msg, interval)

    def stop(self) -> None:
        """Ask to stop: the current handler finishes, then on_stop runs. Returns at once."""
        self._cell.request_stop()

    async def spawn(
        self,
        cls: type[Actor],
        *args: Any,
        name: str | None = None,
        mailbox_size: int | None = None,
        overflow: Overflow = "reject",
        supervisor: OneForOne | None = None,
        **kwargs: Any,
    ) -> LocalActorRef:
        """Spawn a child: it is supervised by, told about to, and stopped with this actor."""
        return await self._cell.system.spawn(
            cls,
            *args,
            name=name,
            mailbox_size=mailbox_size,
            overflow=overflow,
            supervisor=supervisor,
            _parent=self._cell,
            **kwargs,
        )
