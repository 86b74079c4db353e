"""Lifecycle half of an actor cell: states, stopping, children and timers.

Split from `_cell.py` (message processing); `ActorCell` subclasses this and owns the slots.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ._actor import Actor
from ._errors import ActorStopped
from ._mailbox import Ask, Mailbox, unwrap
from ._supervisor import Terminated
from ._timers import Timer

if TYPE_CHECKING:
    from ._pid import PID
    from ._ref import LocalActorRef
    from ._system import ActorSystem

logger = logging.getLogger("actors")

# Lifecycle states, ordered: everything >= STOPPING refuses new messages.
RUNNING = 0
SUSPENDED = 1  # waiting out a restart backoff: accepts messages, processes none
STOPPING = 2
STOPPED = 3

# System messages: unbounded, handled before any queued user message.
SYS_START = 0
SYS_RESTART = 1
SYS_STOP = 2
SYS_NOTIFY = 3  # a Terminated for on_receive
SYS_CHILD_FAILED = 4  # a child escalated its failure to us
SYS_FAILED = 5  # an eager handler raised: its failure, for the supervisor's decider


class CellLifecycle(Mailbox):
    """Stopping (idempotent, children first), the supervision tree and timers."""

    __slots__ = (
        "_actor",
        "_children",
        "_parent",
        "_restart_handle",
        "_state",
        "_stopped",
        "_sys",
        "_task",
        "_timers",
        "pid",
        "ref",
        "system",
    )

    system: ActorSystem
    pid: PID
    ref: LocalActorRef
    _actor: Actor
    _state: int
    _task: asyncio.Task[None] | None
    _sys: deque[tuple[int, Any]] | None
    _children: set[CellLifecycle] | None
    _parent: CellLifecycle | None
    _timers: set[Timer] | None
    _restart_handle: asyncio.TimerHandle | None
    _stopped: asyncio.Future[None] | None

    def _post(self, kind: int, payload: Any) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        raise NotImplementedError

    def deliver_timer(self, msg: Any) -> None:
        raise NotImplementedError

    def request_stop(self, reason: BaseException | None = None, escalate: bool = False) -> None:
        """Begin stopping; idempotent. The running handler (if any) finishes first."""
        if self._state >= STOPPING:
            return
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None
        self._state = STOPPING
        if self._task is None and not self._children and type(self._actor).on_stop is Actor.on_stop:
            # Nothing to await: finish synchronously, no task needed (cheap mass shutdown).
            self._finalize(reason, escalate)
            return
        self._post(SYS_STOP, (reason, escalate))

    def stopped_future(self) -> asyncio.Future[None]:
        fut = self._stopped
        if fut is None:
            fut = self._stopped = self.system.loop.create_future()
            if self._state == STOPPED:
                fut.set_result(None)
        return fut

    @property
    def stopped(self) -> bool:
        return self._state == STOPPED

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def _stop_now(self, reason: BaseException | None, escalate: bool) -> None:
        self._cancel_timers()
        await self._stop_children()
        actor = self._actor
        if type(actor).on_stop is not Actor.on_stop:
            try:
                await actor.on_stop()
            except Exception:
                logger.exception("actor %s: on_stop raised", self.pid)
        self._finalize(reason, escalate)

    async def _stop_children(self) -> None:
        children, self._children = self._children, None
        if not children:
            return
        waits = []
        for child in children:
            child.request_stop()
            if child._state != STOPPED:
                waits.append(child.stopped_future())
        if waits:
            await asyncio.wait(waits)

    def force_stop(self, reason: BaseException | None) -> None:
        """Finalize without running anything (shutdown deadline passed)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self._task = None
        self._finalize(reason, False)

    def _finalize(self, reason: BaseException | None, escalate: bool) -> None:
        if self._state == STOPPED:
            return
        self._state = STOPPED
        self._cancel_timers()
        if self._restart_handle is not None:
            self._restart_handle.cancel()
            self._restart_handle = None
        system = self.system
        system.retire(self)
        q, self._q = self._q, None
        self._sys = None  # pending notices and restarts are moot now
        if q:
            dead_letters = system.dead_letters
            for item in q:
                if type(item) is Ask:
                    if not item.future.done():
                        item.future.set_exception(
                            ActorStopped(self.pid, "stopped before answering")
                        )
                else:
                    dead_letters.record(self.pid, unwrap(item), "actor stopped")
        if self._waiters:
            self._wake_all_waiters()  # they will find the actor stopped and dead-letter
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        children, self._children = self._children, None
        for child in children or ():
            child.request_stop()
        parent = self._parent
        if parent is None:
            system.root_child_stopped(self.pid, reason, escalate)
        else:
            parent._child_stopped(self, reason, escalate)

    def _child_stopped(
        self, child: CellLifecycle, reason: BaseException | None, escalate: bool
    ) -> None:
        children = self._children
        if not children or child not in children:
            return  # we are stopping or restarting it ourselves: no notice wanted
        children.discard(child)
        if not children:
            self._children = None
        if self._state >= STOPPING:
            return
        if escalate and reason is not None:
            self._post(SYS_CHILD_FAILED, (child.pid, reason))
        else:
            self._post(SYS_NOTIFY, Terminated(child.pid, reason))

    # -- children, timers, context -------------------------------------------------------------

    def add_child(self, child: CellLifecycle) -> None:
        if self._state >= STOPPING:
            raise ActorStopped(self.pid, "cannot spawn children while stopping")
        if self._children is None:
            self._children = set()
        self._children.add(child)

    def children(self) -> list[LocalActorRef]:
        return [child.ref for child in self._children or ()]

    # -- timers ------------------------------------------------------------------------------

    def schedule(self, delay: float, msg: Any, interval: float | None) -> Timer:
        timer = Timer(self, self.system.loop, msg, max(0.0, delay), interval)
        if self._state >= STOPPING:
            timer.cancel()  # timers never outlive the actor
            return timer
        if self._timers is None:
            self._timers = set()
        self._timers.add(timer)
        return timer

    def _forget_timer(self, timer: Timer) -> None:
        timers = self._timers
        if timers is not None:
            timers.discard(timer)
            if not timers:
                self._timers = None

    def _cancel_timers(self) -> None:
        timers, self._timers = self._timers, None
        for timer in timers or ():
            timer.cancel()
