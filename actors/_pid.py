"""Process identifiers: `node@host:port/actor-id`, immutable, hashable, wire-safe."""

from __future__ import annotations

import re

import msgspec

# Node strings look like `name@host:port`; the host may be a bracketed IPv6 literal.
_NODE_RE = re.compile(r"^[^@/\s]+@[^@/\s]+:\d{1,5}$")
# An actor id is whatever follows the single slash; it must not contain another one.
_ID_RE = re.compile(r"^[^/\s]+$")
MAX_ID_LENGTH = 200


def validate_node(node: str) -> str:
    """Return `node` unchanged, or raise ValueError explaining the expected shape."""
    if not isinstance(node, str) or not _NODE_RE.match(node):
        raise ValueError(
            f"invalid node {node!r}: expected 'name@host:port', e.g. 'node-a@127.0.0.1:8000'"
        )
    return node


def validate_id(actor_id: str) -> str:
    """Return `actor_id` unchanged, or raise ValueError (no '/', no whitespace, not empty)."""
    if not isinstance(actor_id, str) or len(actor_id) > MAX_ID_LENGTH or not _ID_RE.match(actor_id):
        raise ValueError(
            f"invalid actor id {actor_id!r}: 1-{MAX_ID_LENGTH} characters, no '/' or whitespace"
        )
    return actor_id


class PID(msgspec.Struct, frozen=True, gc=False):
    """Address of one actor: the node that hosts it plus its id (name) on that node.

    A frozen msgspec Struct, so it is hashable, cheap, and can travel inside messages.
    """

    node: str
    id: str

    def __str__(self) -> str:
        return f"{self.node}/{self.id}"

    @classmethod
    def parse(cls, text: str) -> PID:
        """Inverse of `str(pid)`; raises ValueError with the reason on malformed input."""
        if not isinstance(text, str):
            raise ValueError(f"invalid PID {text!r}: expected a string")
        node, sep, actor_id = text.partition("/")
        if not sep:
            raise ValueError(f"invalid PID {text!r}: expected 'name@host:port/actor-id'")
        try:
            return cls(validate_node(node), validate_id(actor_id))
        except ValueError as exc:
            raise ValueError(f"invalid PID {text!r}: {exc}") from None

    @property
    def name(self) -> str:
        """The node's name part (before '@')."""
        return self.node.partition("@")[0]

    @property
    def host(self) -> str:
        return self.node.partition("@")[2].rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.node.rpartition(":")[2])
