"""Exceptions raised by the actor runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._pid import PID


class ActorError(Exception):
    """Base class of every error the runtime raises itself."""


class MailboxFull(ActorError):
    """`tell` found the mailbox at capacity (overflow policy `reject`)."""

    def __init__(self, pid: PID | str, capacity: int) -> None:
        super().__init__(f"mailbox of {pid} is full ({capacity} messages)")
        self.pid = pid
        self.capacity = capacity


class AskTimeout(ActorError, TimeoutError):
    """No answer to an `ask` arrived within its timeout."""

    def __init__(self, pid: PID | str, msg_type: str, timeout: float) -> None:
        super().__init__(f"ask {msg_type} to {pid} timed out after {timeout:g}s")
        self.pid = pid
        self.msg_type = msg_type
        self.timeout = timeout


class ActorStopped(ActorError):
    """The actor stopped (or was never there) before it could answer."""

    def __init__(self, pid: PID | str, detail: str = "actor is stopped") -> None:
        super().__init__(f"{pid}: {detail}")
        self.pid = pid


class NameTaken(ActorError):
    """`spawn(name=...)` used a name that a live actor of this node already has."""

    def __init__(self, name: str, node: str) -> None:
        super().__init__(f"actor name {name!r} is already taken on node {node}")
        self.name = name


class RemoteError(ActorError):
    """An actor on another node raised while answering an `ask`.

    The original exception cannot cross the wire, so its type name and message do.
    """

    def __init__(self, type_name: str, message: str, pid: PID | str | None = None) -> None:
        where = f" in {pid}" if pid is not None else ""
        super().__init__(f"{type_name}{where}: {message}")
        self.type_name = type_name
        self.remote_message = message
        self.pid = pid
