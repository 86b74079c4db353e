"""Logged-in console clients for the in-process console tests."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

PASSWORD = "long-Enough-pass-4711"


def staff_client(username: str, group: str) -> Client:
    """A Django test client logged in as a new staff user of ``group``."""
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client
