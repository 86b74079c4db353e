"""Console pages for player accounts: look up, end sessions, lift lockouts; roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gamebackend.accounts.models import Account, LoginLockout, RefreshSession
from gamebackend.flow.apps import OPERATORS_GROUP, STAFF_VIEWERS_GROUP
from gamebackend.flow.models import RateLimitRule
from tests.console.test_flow_admin import staff_client

pytestmark = pytest.mark.django_db

HASH = "pbkdf2_sha256$1000000$salt$c2VjcmV0LWhhc2gtdmFsdWU="


def account_with_sessions(count: int = 2) -> Account:
    account = Account.objects.create(
        player_id="p-console1", username="ann", password=HASH, kind=Account.Kind.PASSWORD
    )
    for i in range(count):
        RefreshSession.objects.create(
            public_id=f"session-{i:010d}",
            account=account,
            token_hash="0" * 64,
            expires_at=timezone.now() + timedelta(days=30),
        )
    return account


def locked() -> LoginLockout:
    now = timezone.now()
    return LoginLockout.objects.create(
        username="ann", ip_address="203.0.113.7", failures=5, last_failure_at=now,
        locked_until=now + timedelta(minutes=15),
    )  # fmt: skip


def test_auth_api_rules_ship_with_the_migrations() -> None:
    rules = {(r.resource, r.scope): (r.rate, r.burst) for r in RateLimitRule.objects.all()}
    assert rules[("http.auth.device", "ip")] == (5, 20)
    assert rules[("http.auth.register", "ip")] == (1, 5)
    assert rules[("http.auth.register", "node")] == (10, 20)
    assert rules[("http.auth.login", "ip")] == (2, 10)
    assert rules[("http.auth.login", "node")] == (20, 40)
    assert rules[("http.auth.refresh", "ip")] == (5, 20)


def test_viewers_see_accounts_but_not_credentials_and_change_nothing() -> None:
    account = account_with_sessions()
    client = staff_client("viewer", STAFF_VIEWERS_GROUP)
    listing = client.get("/console/accounts/account/?q=ann")
    assert listing.status_code == 200
    assert "p-console1" in listing.content.decode()
    page = client.get(f"/console/accounts/account/{account.pk}/change/").content.decode()
    assert "session-0000000000" in page
    assert HASH not in page
    assert "salt" not in page
    client.post(
        "/console/accounts/account/",
        {"action": "revoke_sessions", "_selected_action": [account.pk]},
    )
    assert RefreshSession.objects.filter(revoked_at__isnull=True).count() == 2
    lockout = locked()
    assert client.get("/console/accounts/loginlockout/").status_code == 200
    client.post(
        "/console/accounts/loginlockout/", {"action": "unlock", "_selected_action": [lockout.pk]}
    )
    assert LoginLockout.objects.exists()


def test_operators_end_sessions_and_lift_lockouts() -> None:
    account = account_with_sessions()
    client = staff_client("op", OPERATORS_GROUP)
    response = client.post(
        "/console/accounts/account/",
        {"action": "revoke_sessions", "_selected_action": [account.pk]},
    )
    assert response.status_code == 302
    assert not RefreshSession.objects.filter(revoked_at__isnull=True).exists()
    assert set(RefreshSession.objects.values_list("revoked_reason", flat=True)) == {"revoked"}
    lockout = locked()
    response = client.post(
        "/console/accounts/loginlockout/", {"action": "unlock", "_selected_action": [lockout.pk]}
    )
    assert response.status_code == 302
    assert not LoginLockout.objects.exists()
