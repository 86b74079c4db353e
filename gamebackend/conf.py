"""Environment parsing for the settings module.

Kept apart from ``settings.py`` so the rules (defaults, the var directory, generated
secrets) can be unit-tested without re-importing Django settings.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_BIND = "127.0.0.1:8000"
GENERATED_KEYS_FILE = "secrets.json"
# Private to the node's owner: the file holds the signing keys.
PRIVATE_FILE_MODE = 0o600
# Django's check --deploy wants at least 50 characters with 5 distinct ones.
GENERATED_SECRET_BYTES = 48
# The node's ASGI servers (GAME_SERVER); the first is the default, chosen by measurement
# (docs/BENCHMARKS.md).
SERVERS = ("uvicorn", "daphne")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Bind:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_bind() -> Bind:
    """``GAME_BIND`` (host:port, default 127.0.0.1:8000); ``PORT`` alone overrides the port."""
    raw = env_str("GAME_BIND", DEFAULT_BIND)
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host:
        raise ImproperlyConfigured(f"GAME_BIND must be HOST:PORT, got {raw!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ImproperlyConfigured(f"GAME_BIND port must be an integer, got {raw!r}") from None
    port = env_int("PORT", port, minimum=0)
    if not 0 <= port <= 65535:
        raise ImproperlyConfigured(f"port out of range: {port}")
    return Bind(host=host.strip("[]"), port=port)


def server_choice() -> str:
    """``GAME_SERVER``: which ASGI server runs the node (read before Django is set up)."""
    value = env_str("GAME_SERVER", SERVERS[0]).lower()
    if value not in SERVERS:
        choices = ", ".join(SERVERS)
        raise ImproperlyConfigured(f"GAME_SERVER must be one of {choices}, got {value!r}")
    return value


def default_node_id(bind: Bind) -> str:
    host = bind.host
    if host in {"0.0.0.0", "::", ""}:
        host = socket.gethostname()
    return f"game@{host}:{bind.port}"


def process_node_id(node_id: str, index: int, processes: int) -> str:
    """The node id of server process ``index`` of ``processes`` on one node.

    Each process has its own actor system, so each needs its own address in PIDs:
    ``game@host:port`` becomes ``game.p0@host:port``, ``game.p1@host:port``, ...
    """
    if processes <= 1:
        return node_id
    name, at, rest = node_id.partition("@")
    return f"{name}.p{index}{at}{rest}"


def var_dir() -> Path:
    path = Path(env_str("GAME_VAR_DIR", str(BASE_DIR / "var"))).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_private_file(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (no window where others can read it)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, PRIVATE_FILE_MODE)
    os.replace(tmp, path)


def local_secrets(directory: Path) -> dict[str, str]:
    """Secrets generated once for the single-machine profile and reused afterwards."""
    path = directory / GENERATED_KEYS_FILE
    data: dict[str, str] = {}
    if path.exists():
        data = json.loads(path.read_text())
    changed = False
    for key in ("django_secret_key", "jwt_secret"):
        if not data.get(key):
            data[key] = secrets.token_urlsafe(GENERATED_SECRET_BYTES)
            changed = True
    if changed:
        write_private_file(path, json.dumps(data, indent=2) + "\n")
    return data


def resolve_secret(env_name: str, key: str, *, cluster: bool, directory: Path) -> str:
    value = env_str(env_name)
    if value:
        return value
    if cluster:
        # Nodes of a cluster must share these (a ticket minted on one node is checked on
        # another), so a per-node generated value would be a silent misconfiguration.
        raise ImproperlyConfigured(
            f"{env_name} must be set in the cluster profile (DATABASE_URL/REDIS_URL given)"
        )
    return local_secrets(directory)[key]


def ticket_ttl(max_age_s: float) -> int:
    """``GAME_TICKET_TTL_S``: whole seconds, at most ``GAME_TICKET_MAX_AGE_S``.

    A ticket must be good for the whole lifetime the server announces (``expires_in``): the
    lifetime may not outlast the window in which its ``iat`` is accepted.
    """
    ttl = env_int("GAME_TICKET_TTL_S", min(30, int(max_age_s)), minimum=1)
    if ttl > max_age_s:
        raise ImproperlyConfigured(
            f"GAME_TICKET_TTL_S ({ttl}) must not exceed GAME_TICKET_MAX_AGE_S ({max_age_s:g}):"
            " tickets would be refused before they expire"
        )
    return ttl


def csv_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, fd00::/8, 192.0.2.7"`` -> networks (a bare address is one host).

    Raises ValueError naming the entry that is not an address or CIDR. Host bits are
    allowed (``10.1.2.3/8`` means ``10.0.0.0/8``).
    """
    networks: list[Network] = []
    for item in csv_list(raw):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def env_networks(name: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (IPv4 and IPv6) from ``name``; empty when unset."""
    try:
        return parse_networks(env_str(name))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None
