"""Rule synchronisation in process, on the test database."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from gamebackend.flow.enforcement import FlowEnforcement
from gamebackend.flow.rulesync import RuleSync
from gamebackend.flow.services import node_flow_state_record

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_node_counts_the_live_nodes_before_its_first_admission() -> None:
    # Regression: the count came with the first poll, 2 s after start; until then a node
    # falling back to its local share took the whole of every cluster rule.
    await database_sync_to_async(node_flow_state_record)(
        node_id="game@other:1", rules_version=1, snapshot={}
    )
    enforcement = FlowEnforcement(node_id="game@this:1")
    sync = RuleSync(enforcement, report_state=True)
    try:
        await sync.start()
        assert enforcement.loaded
        assert enforcement.live_nodes == 2
    finally:
        await sync.close()
