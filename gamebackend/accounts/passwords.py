"""Password hashing and validation with Django's hashers and validators, off the event loop.

A hash costs about half a second of CPU by design (PBKDF2, Django's default), so it runs
in a small pool of its own threads: the event loop keeps serving, and the ORM's thread is
not held up by it. The node-scope rules of ``http.auth.login`` and
``http.auth.register`` bound how much of the machine logins may take.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, cast

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from gamebackend.accounts.errors import Invalid
from gamebackend.accounts.models import Account

# One thread per core: more would only queue inside the OS.
HASH_THREADS: Final = os.cpu_count() or 2
_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="password-hash")


def _new_hash(password: str, username: str) -> str:
    try:
        # The similarity check compares with the username of the account being made.
        validate_password(password, user=cast(Any, Account(username=username)))
    except ValidationError as exc:
        raise Invalid(" ".join(exc.messages), field="password") from None
    return make_password(password)


def _verify(password: str, encoded: str) -> tuple[bool, str | None]:
    if not encoded:
        # No such account (or no password): spend the same time, so the answer's timing
        # does not tell which usernames exist.
        make_password(password)
        return False, None
    upgraded: list[str] = []
    # Django calls the setter when the hash was made with another hasher or older
    # parameters (fewer iterations...): the login upgrades it.
    ok = check_password(password, encoded, setter=lambda raw: upgraded.append(make_password(raw)))
    return ok, (upgraded[0] if ok and upgraded else None)


async def password_hash_new(password: str, *, username: str) -> str:
    """The hash of a new account's password, after Django's validators (Invalid if weak)."""
    return await asyncio.get_running_loop().run_in_executor(_pool, _new_hash, password, username)


async def password_verify(password: str, encoded: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``encoded``, and a new hash when it should be upgraded."""
    return await asyncio.get_running_loop().run_in_executor(_pool, _verify, password, encoded)
