"""Actor runtime: state that changes only by handling messages, one at a time, in order.

Framework-free (asyncio + msgspec); remote delivery uses any Channels-style channel layer
object handed to `ActorSystem(channel_layer=...)`. See docs/ACTORS.md.
"""

from ._actor import Actor
from ._cell import DRAIN_BATCH, SLOW_HANDLER_S
from ._errors import ActorError, ActorStopped, AskTimeout, MailboxFull, NameTaken, RemoteError
from ._mailbox import DEFAULT_MAILBOX_SIZE, Overflow
from ._pid import PID
from ._ref import DEFAULT_ASK_TIMEOUT_S, ActorRef, LocalActorRef
from ._remote import RemoteActorRef, channel_name
from ._serde import register_message
from ._supervisor import Directive, OneForOne, Terminated
from ._system import DEFAULT_SHUTDOWN_TIMEOUT_S, ActorSystem
from ._timers import Timer

__all__ = [
    "DEFAULT_ASK_TIMEOUT_S",
    "DEFAULT_MAILBOX_SIZE",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "DRAIN_BATCH",
    "PID",
    "SLOW_HANDLER_S",
    "Actor",
    "ActorError",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "Directive",
    "LocalActorRef",
    "MailboxFull",
    "NameTaken",
    "OneForOne",
    "Overflow",
    "RemoteActorRef",
    "RemoteError",
    "Terminated",
    "Timer",
    "channel_name",
    "register_message",
]
