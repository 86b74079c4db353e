"""ActorCell: one actor's mailbox, lifecycle, supervision state and the task that drains it.

An idle cell owns no task: the first message schedules a drain task, which exits as soon as
the mailbox is empty. Handlers of one actor therefore never overlap, and messages are
handled in the order they were enqueued.

A message of one of the actor's ``eager_messages`` types told to an idle cell is handled at
once in the teller's call (``_run_eagerly``): most such handlers finish without waiting
and never need a task; one that does wait is handed to a new drain task where it stopped
(``_Resumed``), and the cell stays busy until it ends, as with any handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from ._actor import Actor
from ._errors import ActorStopped, MailboxFull
from ._lifecycle import (
    RUNNING,
    STOPPED,
    STOPPING,
    SUSPENDED,
    SYS_CHILD_FAILED,
    SYS_FAILED,
    SYS_NOTIFY,
    SYS_RESTART,
    SYS_START,
    SYS_STOP,
    CellLifecycle,
)
from ._mailbox import Ask, Envelope, Overflow, unwrap
from ._ref import LocalActorRef
from ._supervisor import Directive, OneForOne, Terminated
from ._timers import Timer

if TYPE_CHECKING:
    from ._pid import PID
    from ._ref import ActorRef
    from ._system import ActorSystem

logger = logging.getLogger("actors")

# Watchdog: a handler running longer than this starves every other actor on the loop.
SLOW_HANDLER_S = 0.05
# Handlers that never suspend would otherwise monopolise the loop while a mailbox has
# messages; yield after this many so other actors and waiting senders get a turn.
DRAIN_BATCH = 128

_RUNNING, _SUSPENDED, _STOPPING, _STOPPED = RUNNING, SUSPENDED, STOPPING, STOPPED
_SYS_START, _SYS_RESTART, _SYS_STOP = SYS_START, SYS_RESTART, SYS_STOP
_SYS_NOTIFY, _SYS_CHILD_FAILED, _SYS_FAILED = SYS_NOTIFY, SYS_CHILD_FAILED, SYS_FAILED

_monotonic = time.monotonic
# Stands in the cell's task slot while an eager handler runs in the teller's call: the
# cell is busy, so messages told meanwhile queue (a drain task takes them afterwards).
_EAGER_RUNNING: Any = object()


class _Resumed:
    """Awaitable that continues a coroutine stepped outside any task (an eager handler).

    ``yielded`` is what the coroutine yielded when it stopped (the future it waits for):
    the awaiting task first waits for that, then drives the coroutine on, passing values
    and exceptions (cancellation included) exactly as ``await`` would have.
    """

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration as stop:
                    return stop.value


def _describe(msg: Any) -> str:
    return type(msg).__name__


class ActorCell(CellLifecycle):
    __slots__ = (
        "_args",
        "_cls",
        "_consecutive",
        "_eager",
        "_failed",
        "_history",
        "_kwargs",
        "_processed",
        "_restarts",
        "_sender",
        "_strategy",
    )

    def __init__(
        self,
        system: ActorSystem,
        pid: PID,
        cls: type[Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        capacity: int,
        overflow: Overflow,
        strategy: OneForOne,
        parent: ActorCell | None,
    ) -> None:
        super().__init__(capacity, overflow)
        self.system = system
        self.pid = pid
        self.ref = LocalActorRef(self)
        self._cls = cls
        self._args = args
        self._kwargs = kwargs
        self._strategy = strategy
        self._parent = parent
        self._state = _RUNNING
        self._task: asyncio.Task[None] | None = None
        self._sys: deque[tuple[int, Any]] | None = None
        self._children: set[CellLifecycle] | None = None
        self._timers: set[Timer] | None = None
        self._restart_handle: asyncio.TimerHandle | None = None
        self._history: deque[float] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._sender: ActorRef | None = None
        self._processed = 0
        self._failed = 0
        self._restarts = 0
        self._consecutive = 0
        self._eager = frozenset(cls.eager_messages)
        self._actor = self._instantiate()

    # -- construction ----------------------------------------------------------------------

    def _instantiate(self) -> Actor:
        cls = self._cls
        actor = cls.__new__(cls)
        actor._cell = self
        init: Any = cls.__init__
        init(actor, *self._args, **(self._kwargs or {}))
        return actor

    def start(self) -> None:
        """Queue on_start (only when overridden: actors without it cost no task at spawn)."""
        if type(self._actor).on_start is not Actor.on_start:
            self._post(_SYS_START, None)

    # -- enqueueing (hot path) -------------------------------------------------------------

    def tell(self, item: Any) -> None:
        if self._state >= _STOPPING:
            self.system.dead_letters.record(self.pid, unwrap(item), "actor stopped")
            return
        q = self._q
        eager = self._eager
        if eager and not q and self._task is None and not self._state and type(item) in eager:
            self._run_eagerly(item)
            return
        if q is None:
            q = self._q = deque()
        elif len(q) >= self._capacity:
            self._make_room(q, item)
        q.append(item)
        if self._task is None and not self._state:
            # The cell owns its drain task; stop/shutdown await it or cancel it.
            self._task = self.system.loop.create_task(self._drain())  # owned by this cell

    def _run_eagerly(self, msg: Any) -> None:
        """Handle ``msg`` now, in the caller's call (see the module doc)."""
        self._task = _EAGER_RUNNING
        started = _monotonic()
        coro = self._actor.on_receive(msg)
        try:
            yielded = coro.send(None)
        except StopIteration:
            self._task = None
            self._finish_eager(msg, started)
        except Exception as exc:
            # To the supervisor's decider, as from the drain task (which runs it next).
            self._task = None
            self._processed += 1
            self._post(_SYS_FAILED, (exc, msg))
        except BaseException:
            self._task = None  # e.g. KeyboardInterrupt: the cell must not stay busy
            raise
        else:
            # It waits for something: a drain task takes it over where it stopped.
            resumed = _Resumed(coro, yielded)
            task = self.system.loop.create_task(self._drain((resumed, msg)))  # owned by this cell
            self._task = task
            return
        if self._task is None and (self._q or self._sys):
            # Told (or stopped) while it ran: the queued messages get the usual task.
            self._task = self.system.loop.create_task(self._drain())  # owned by this cell

    def _finish_eager(self, msg: Any, started: float) -> None:
        """Bookkeeping of an eager handler that ended well (as ``_drain`` does per message)."""
        self._processed += 1
        if self._consecutive:
            self._consecutive = 0
        elapsed = _monotonic() - started
        if elapsed > SLOW_HANDLER_S:
            self.system.slow_handler(self.pid, msg, elapsed)

    def _rejected(self, item: Any) -> None:
        self.system.mailbox_rejected += 1
        raise MailboxFull(self.pid, self._capacity)

    def _dropped(self, item: Any) -> None:
        self.system.mailbox_dropped += 1
        if type(item) is Ask and not item.future.done():
            item.future.set_exception(MailboxFull(self.pid, self._capacity))

    def enqueue_ask(self, item: Ask) -> bool:
        """Queue an ask if there is room; False means wait for room and retry."""
        if self._state >= _STOPPING:
            raise ActorStopped(self.pid)
        if self._full():
            return False
        self.tell(item)
        return True

    async def put(self, item: Any) -> None:
        """Enqueue, waiting for room under either overflow policy (producer backpressure)."""
        while self._state < _STOPPING and self._full():
            await self._wait_for_room()
        self.tell(item)

    async def wait_for_room(self) -> None:
        if self._state < _STOPPING and self._full():
            await self._wait_for_room()

    def deliver_timer(self, msg: Any) -> None:
        try:
            self.tell(msg)
        except MailboxFull:
            self.system.timer_overflow(self.pid, msg)

    # -- the drain task --------------------------------------------------------------------

    async def _drain(self, waiting: tuple[_Resumed, Any] | None = None) -> None:
        monotonic = _monotonic
        batch = 0
        actor = self._actor
        try:
            if waiting is not None:
                # An eager handler that had to wait: finish it before anything queued.
                resumed, msg = waiting
                started = monotonic()
                try:
                    await resumed
                except Exception as exc:
                    if await self._handler_failed(exc, msg):
                        return
                    actor = self._actor
                else:
                    self._finish_eager(msg, started)
            while True:
                if self._sys:
                    await self._run_system()
                    if self._state == _SUSPENDED or self._state == _STOPPED:
                        return
                    actor = self._actor
                    continue
                q = self._q
                if not q:
                    # Idle: release the buffers so a quiet actor holds only its cell.
                    self._q = None
                    self._sys = None
                    return
                item = q.popleft()
                if self._waiters:
                    self._taken()
                kind = type(item)
                started = monotonic()
                try:
                    if kind is Ask:
                        msg = item.msg
                        fut = item.future
                        self._sender = item.sender
                        try:
                            result = await actor.on_receive(msg)
                        except Exception as exc:
                            if not fut.done():
                                fut.set_exception(exc)
                            raise
                        finally:
                            self._sender = None
                        if not fut.done():
                            fut.set_result(result)
                    elif kind is Envelope:
                        msg = item.msg
                        self._sender = item.sender
                        try:
                            await actor.on_receive(msg)
                        finally:
                            self._sender = None
                    else:
                        msg = item
                        await actor.on_receive(msg)
                    if self._consecutive:
                        self._consecutive = 0
                except Exception as exc:
                    if await self._handler_failed(exc, msg):
                        return
                    actor = self._actor
                    continue
                self._processed += 1
                elapsed = monotonic() - started
                if elapsed > SLOW_HANDLER_S:
                    self.system.slow_handler(self.pid, msg, elapsed)
                batch += 1
                if batch >= DRAIN_BATCH:
                    batch = 0
                    await asyncio.sleep(0)
        finally:
            self._task = None

    async def _handler_failed(self, exc: Exception, msg: Any) -> bool:
        """A handler raised: to the supervisor's decider. True when the drain must end (the
        actor waits out a restart backoff with no task)."""
        self._processed += 1
        await self._fail(exc, msg, "on_receive")
        return self._state == _SUSPENDED

    def _post(self, kind: int, payload: Any) -> None:
        """Queue a system message; it bypasses the bound and overtakes user messages."""
        if self._state == _STOPPED:
            return
        sys_q = self._sys
        if sys_q is None:
            sys_q = self._sys = deque()
        sys_q.append((kind, payload))
        if self._task is None and self._state != _SUSPENDED:
            self._task = self.system.loop.create_task(self._drain())  # owned by this cell

    async def _run_system(self) -> None:
        sys_q = self._sys
        while sys_q and self._state != _STOPPED:
            kind, payload = sys_q.popleft()
            if kind == _SYS_STOP:
                await self._stop_now(*payload)
            elif kind == _SYS_START:
                await self._start_instance(restart=False)
            elif self._state >= _STOPPING:
                continue  # restarts and notices are moot once stopping
            elif kind == _SYS_RESTART:
                await self._start_instance(restart=True)
            elif kind == _SYS_NOTIFY:
                await self._deliver_notice(payload)
            elif kind == _SYS_CHILD_FAILED:
                child, exc = payload
                await self._fail(exc, None, f"child {child}", escalated=True)
            elif kind == _SYS_FAILED:
                exc, msg = payload
                await self._fail(exc, msg, "on_receive")
            if self._state == _SUSPENDED:
                return

    async def _start_instance(self, restart: bool) -> None:
        if restart:
            # Children and timers belong to the failed incarnation; the new one rebuilds
            # whatever it needs in on_start (which also avoids child name clashes).
            await self._stop_children()
            self._cancel_timers()
            try:
                self._actor = self._instantiate()
            except Exception as exc:
                await self._fail(exc, None, "__init__")
                return
        actor = self._actor
        if type(actor).on_start is Actor.on_start:
            return
        try:
            await actor.on_start()
        except Exception as exc:
            await self._fail(exc, None, "on_start")

    async def _deliver_notice(self, notice: Terminated) -> None:
        self._processed += 1
        try:
            await self._actor.on_receive(notice)
        except Exception as exc:
            await self._fail(exc, notice, "on_receive")

    # -- failures and supervision ------------------------------------------------------------

    async def _fail(self, exc: Exception, msg: Any, phase: str, escalated: bool = False) -> None:
        self._failed += 1
        self._consecutive += 1
        if escalated:
            # The child already logged the traceback; one line here keeps "logged once".
            logger.error("actor %s: failure escalated from %s: %r", self.pid, phase, exc)
        else:
            what = _describe(msg) if msg is not None else "-"
            logger.error(
                "actor %s failed in %s (message %s): %r",
                self.pid,
                phase,
                what,
                exc,
                exc_info=exc,
            )
        try:
            await self._actor.on_failure(exc, msg)
        except Exception:
            logger.exception("actor %s: on_failure hook raised", self.pid)
        if self._state >= _STOPPING:
            return  # the hook (or someone else) already asked it to stop
        if self._history is None:
            self._history = deque()
        plan = self._strategy.plan(exc, self._history, self._consecutive, _monotonic())
        directive, delay = plan.directive, plan.delay
        if directive is Directive.RESUME:
            return
        if directive is Directive.RESTART:
            self._restarts += 1
            if delay <= 0:
                self._post(_SYS_RESTART, None)
            else:
                # Wait without a task: a timer handle flips us back to running.
                self._state = _SUSPENDED
                self._restart_handle = self.system.loop.call_later(delay, self._end_backoff)
            return
        if plan.budget_exhausted:
            logger.error(
                "actor %s: restart budget exhausted (%r); stopping", self.pid, self._strategy
            )
        self.request_stop(exc, escalate=directive is Directive.ESCALATE)

    def _end_backoff(self) -> None:
        self._restart_handle = None
        if self._state != _SUSPENDED:
            return
        self._state = _RUNNING
        self._post(_SYS_RESTART, None)

    @property
    def sender(self) -> ActorRef | None:
        return self._sender

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.system.loop

    def stats(self) -> dict[str, int]:
        return {
            "mailbox": len(self),
            "processed": self._processed,
            "failed": self._failed,
            "restarts": self._restarts,
        }

    def __repr__(self) -> str:
        return f"<ActorCell {self.pid} {type(self._actor).__name__} state={self._state}>"
