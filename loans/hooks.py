"""Extension points of the loan core for the apps built on it.

``loans`` imports no other app, yet some of them must act inside a loan command's transaction:
the servicing app moves pending autopay payments to the new due dates and amounts whenever a
loan's schedule changes (DESIGN §11: a modification activated or cancelled, a termination or
its undo, an advancement, a payment). So the core exposes a tiny registry:

* an app registers a receiver once, in its ``AppConfig.ready``:
  ``hooks.on_schedule_changed(servicing.autopay.resync_after_schedule_change)``;
* ``rebuild_schedule`` (every schedule change goes through it) calls
  ``hooks.schedule_changed(loan)`` at its end, inside the command's transaction and under the
  loan row lock the command holds. A receiver that raises aborts the command (nothing is
  written), like any other failure inside it.

Unlike a Django signal, the order is the registration order and there is no sender filtering
to get wrong; receivers are plain functions ``f(loan) -> None``.
"""

from __future__ import annotations

from collections.abc import Callable

_schedule_changed: list[Callable] = []


def on_schedule_changed(receiver: Callable) -> Callable:
    """Register ``receiver(loan)``; registering the same function twice has no effect."""
    if receiver not in _schedule_changed:
        _schedule_changed.append(receiver)
    return receiver


def schedule_changed(loan) -> None:
    for receiver in list(_schedule_changed):
        receiver(loan)
