"""Create the operator (superuser) account once, if it does not exist yet."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from gamebackend import conf

OPERATOR_CREDENTIAL_FILE = "operator_password"
GENERATED_PASSWORD_BYTES = 18


class Command(BaseCommand):
    help = "Create the operator account (GAME_ADMIN_USER) if none exists."

    def handle(self, *args: Any, **options: Any) -> None:
        username = settings.GAME_ADMIN_USER
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(f"Operator account {username!r} exists.")
            return
        password = conf.env_str("GAME_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        user_model.objects.create_superuser(username=username, email="", password=password)
        if generated:
            path = settings.GAME_VAR_DIR / OPERATOR_CREDENTIAL_FILE
            conf.write_private_file(path, password + "\n")
            # Printed once, here; afterwards it is only in the 0600 file.
            self.stdout.write(
                self.style.WARNING(
                    f"Created operator account {username!r} with password: {password}\n"
                    f"(also stored in {path}, mode 0600)"
                )
            )
        else:
            self.stdout.write(f"Created operator account {username!r} (GAME_ADMIN_PASSWORD).")
