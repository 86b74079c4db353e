"""The single-machine Celery broker: kombu's filesystem transport, with atomic writes.

kombu writes a message file in place (open, lock, write) while a worker polling the
folder may already move and read it: it then reads an empty or partial file, and the
worker dies with "Unrecoverable error: JSONDecodeError". The faster the worker polls,
the likelier (settings.FILESYSTEM_POLL_S). Here a message is written under a name the
worker ignores (``.part``) and renamed into place, which is atomic on one filesystem.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# Not a queue's suffix: the worker's listing skips files until they are renamed.
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    # kombu's stubs disagree on the parameter's name between its base classes.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
