"""What L2 keeps of a session: who, how far, and the un-acknowledged outbox (encoded).

Pure data and codecs (no I/O), so it is unit-tested on its own. Outbox messages are kept
as msgpack frames of the wire protocol: a node decodes them with the same typed decoder
the SDKs use, so a message restored on another node is the message that was sent.
"""

from __future__ import annotations

from typing import Any

import msgspec

import gameproto as p


# Plain data (strings, ints, a list of bytes): never in a cycle, so not tracked by the cycle
# collector (each connection's record is replaced at every change; docs/BENCHMARKS.md).
class SessionRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    session_id: str
    player_id: str
    # The highest seq numbered in the session and the highest the client acknowledged.
    last_seq: int
    acked_seq: int
    # The outbox: msgpack frames of the messages acked_seq+1 .. last_seq, oldest first.
    items: list[bytes]
    # Set by a node that handed the session over to another one (takeover): final.
    sealed: bool = False
    # The node that wrote the record (diagnostics).
    node: str = ""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SessionRecord)


def encode_record(record: SessionRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> SessionRecord:
    return _decoder.decode(data)


def encode_message(msg: Any) -> bytes:
    """One outbox message as a msgpack frame (it carries its ``seq``)."""
    return p.MSGPACK_CODEC.encode(msg)  # type: ignore[return-value]  # binary codec: bytes


def decode_message(frame: bytes) -> Any:
    return p.MSGPACK_CODEC.server.decode(frame)
