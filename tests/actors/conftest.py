from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actors import ActorSystem, OneForOne

# Restart at once in tests: the backoff itself is tested separately.
NO_BACKOFF = OneForOne(backoff=(0, 0))


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    sys = ActorSystem(node="test@127.0.0.1:9000", supervisor=NO_BACKOFF)
    await sys.start()
    yield sys
    await sys.shutdown(timeout=2.0)
