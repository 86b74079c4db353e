"""The registry of deterministic simulations a room can be created with (``create.sim``).

Simulations themselves are pure modules; the ``demo`` one lives in the wire contract
(``gameproto.sims``) because clients in every language must compute the same digests.
"""

from __future__ import annotations

from typing import Any

from gameproto.sims import DEMO, Simulation

__all__ = ["get_sim", "register_sim", "sim_names"]

_registry: dict[str, Simulation[Any]] = {}


def register_sim(sim: Simulation[Any]) -> Simulation[Any]:
    """Make ``sim`` available under ``sim.name`` (same name on every node of a cluster)."""
    existing = _registry.get(sim.name)
    if existing is not None and existing is not sim:
        raise ValueError(f"a simulation named {sim.name!r} is already registered")
    _registry[sim.name] = sim
    return sim


def unregister_sim(name: str) -> None:
    """Remove a simulation (tests that register their own)."""
    _registry.pop(name, None)


def get_sim(name: str | None) -> Simulation[Any] | None:
    """The simulation named ``name``; None for None; KeyError for an unknown name."""
    if name is None:
        return None
    return _registry[name]


def sim_names() -> list[str]:
    return sorted(_registry)


register_sim(DEMO)
