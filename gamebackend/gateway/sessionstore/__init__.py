"""Two-level session store: L1 per-node cache, L2 Redis (cluster) or SQLite (single machine).

See ``store.SessionStore`` for the model and docs/PROTOCOL.md for the loss window.
"""

from gamebackend.gateway.sessionstore.record import SessionRecord, decode_record, encode_record
from gamebackend.gateway.sessionstore.store import L2, SessionStore, WriteBatch

__all__ = ["L2", "SessionRecord", "SessionStore", "WriteBatch", "decode_record", "encode_record"]
