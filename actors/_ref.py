"""Actor references: the only way to talk to an actor (local, remote or gone)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from ._deadlines import expire_ask
from ._errors import ActorStopped, AskTimeout
from ._mailbox import Ask, Envelope

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._deadletters import DeadLetters
    from ._pid import PID

# Long enough for a loaded server, short enough that a lost reply surfaces quickly.
DEFAULT_ASK_TIMEOUT_S: Final = 5.0


class ActorRef:
    """Address plus delivery methods. Equal and hashable by PID."""

    __slots__ = ("pid",)

    pid: PID

    def tell(self, msg: Any, sender: ActorRef | None = None) -> None:
        """Fire and forget; never blocks. Raises MailboxFull when a `reject` mailbox is full.
        Messages to stopped actors become dead letters (never an error)."""
        raise NotImplementedError

    async def send(self, msg: Any, sender: ActorRef | None = None) -> None:
        """Like tell, but waits for room instead of raising (backpressure for producers)."""
        raise NotImplementedError

    async def ask(
        self,
        msg: Any,
        timeout: float | None = DEFAULT_ASK_TIMEOUT_S,  # noqa: ASYNC109 - API per spec
        sender: ActorRef | None = None,
    ) -> Any:
        """Send and await the handler's return value; its exception is re-raised here.
        Raises AskTimeout after `timeout` s, ActorStopped if the actor stops first."""
        raise NotImplementedError

    @property
    def is_local(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other.pid == self.pid

    def __hash__(self) -> int:
        return hash(self.pid)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pid}>"


class LocalActorRef(ActorRef):
    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self.pid = cell.pid
        self._cell = cell

    @property
    def is_local(self) -> bool:
        return True

    @property
    def stopped(self) -> bool:
        return self._cell.stopped

    def tell(self, msg: Any, sender: ActorRef | None = None) -> None:
        if sender is None:
            self._cell.tell(msg)
        else:
            self._cell.tell(Envelope(msg, sender))

    async def send(self, msg: Any, sender: ActorRef | None = None) -> None:
        await self._cell.put(msg if sender is None else Envelope(msg, sender))

    async def ask(
        self,
        msg: Any,
        timeout: float | None = DEFAULT_ASK_TIMEOUT_S,  # noqa: ASYNC109 - API per spec
        sender: ActorRef | None = None,
    ) -> Any:
        cell = self._cell
        system = cell.system
        fut: asyncio.Future[Any] = system.loop.create_future()
        item = Ask(msg, fut, sender)
        if cell.enqueue_ask(item):
            if timeout is not None:
                system.deadlines.watch(fut, self.pid, msg, timeout)
            return await fut
        return await self._ask_when_room(item, timeout)

    async def _ask_when_room(self, item: Ask, timeout: float | None) -> Any:  # noqa: ASYNC109
        """Slow path: the mailbox is full, so wait for room within the same deadline."""
        cell = self._cell
        if timeout is None:
            while not cell.enqueue_ask(item):
                await cell.wait_for_room()
            return await item.future
        loop = cell.system.loop
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                while not cell.enqueue_ask(item):
                    await cell.wait_for_room()
        except TimeoutError:
            raise AskTimeout(self.pid, type(item.msg).__name__, timeout) from None
        handle = loop.call_at(deadline, expire_ask, item.future, self.pid, item.msg, timeout)
        try:
            return await item.future
        finally:
            handle.cancel()


class DeadRef(ActorRef):
    """Reference to a local actor that does not exist (any more): everything dead-letters."""

    __slots__ = ("_dead_letters",)

    def __init__(self, pid: PID, dead_letters: DeadLetters) -> None:
        self.pid = pid
        self._dead_letters = dead_letters

    def tell(self, msg: Any, sender: ActorRef | None = None) -> None:
        self._dead_letters.record(self.pid, msg, "no such actor")

    async def send(self, msg: Any, sender: ActorRef | None = None) -> None:
        self._dead_letters.record(self.pid, msg, "no such actor")

    async def ask(
        self,
        msg: Any,
        timeout: float | None = DEFAULT_ASK_TIMEOUT_S,  # noqa: ASYNC109 - API per spec
        sender: ActorRef | None = None,
    ) -> Any:
        self._dead_letters.record(self.pid, msg, "no such actor")
        raise ActorStopped(self.pid, "no such actor")
