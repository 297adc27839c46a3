"""A run's claim on tonight's plans, taken where the run starts, before anything else does (the
command's temporary Prefect server above all): the lock of each plan that is free, held for the
whole run; when none is free, another run is doing this night, and this one says so and stops."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from learnhours.steps.night import Night
from learnhours.warehouse.lock import Holder, RunLocked, acquire, plan_lock, release


@contextmanager
def night_taken(engine: Engine, night: Night) -> Iterator[frozenset[str]]:
    """Holds the lock of each of tonight's plans that no other run holds; yields their names (the
    run judges those without taking them again, and is refused the others as it always was).
    RunLocked, saying who holds the night, when another run holds every one of them."""
    held: list[tuple[str, Holder]] = []
    refused: list[RunLocked] = []
    try:
        for plan in [*night.judged, *night.closing]:
            name = plan_lock(plan.id)
            try:
                held.append((name, acquire(engine, name)))
            except RunLocked as exc:
                refused.append(exc)
        if refused and not held:
            raise refused[0]
        yield frozenset(name for name, _holder in held)
    finally:
        for name, holder in held:
            release(engine, holder, name)
