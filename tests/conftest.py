from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from tests.services import POSTGRES_URL, REDIS_URL, require_service

# --split first|rest (tests/split.py), used by `make test` to run the slow tests in two halves.
pytest_plugins = ["tests.split"]


@pytest.fixture
def redis_url() -> str:
    """URL of the real Redis (a dedicated db number); fails in CI when Redis is down."""
    parsed = urlparse(REDIS_URL)
    require_service("Redis", parsed.hostname or "127.0.0.1", parsed.port or 6379)
    return REDIS_URL


@pytest.fixture
def postgres_url() -> str:
    parsed = urlparse(POSTGRES_URL)
    require_service("PostgreSQL", parsed.hostname or "127.0.0.1", parsed.port or 5432)
    return POSTGRES_URL


@pytest.fixture
def cluster_database_url() -> Iterator[str]:
    """A PostgreSQL database created for this test and dropped afterwards (tests that edit
    rules or players must not see each other's)."""
    parsed = urlparse(POSTGRES_URL)
    require_service("PostgreSQL", parsed.hostname or "127.0.0.1", parsed.port or 5432)
    import psycopg

    name = f"gbtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cluster_env(cluster_database_url: str, redis_url: str) -> dict[str, str]:
    """Environment of a cluster-profile node on the real PostgreSQL and Redis."""
    return {
        "DATABASE_URL": cluster_database_url,
        "REDIS_URL": redis_url,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "GAME_JWT_SECRET": secrets.token_urlsafe(32),
    }


# Real Daphne nodes for the gateway and SDK end-to-end tests.
from tests.nodes import node, node_factory  # noqa: E402, F401
