"""Providers the dispatcher executes through (DESIGN §11), behind one small protocol.

    provider.send(message, *, idempotency_key) -> Outcome
    provider.lookup(idempotency_key) -> Outcome | None     (what a key already did, if anything)

A provider raises ``ProviderTimeout`` when it cannot tell (a network timeout); the dispatcher
records that as a failed attempt. Calling ``send`` twice with one key executes once: the second
call returns the first call's outcome. The dispatcher uses the attempt id as the key, and the
reconciliation of an attempt left ``IN_FLIGHT`` by a dead worker asks ``lookup`` what happened.

Chosen by settings (dotted paths): ``PAYMENT_PROVIDER``, ``EMAIL_PROVIDER``, ``SMS_PROVIDER``,
``CALL_PROVIDER``. Built in:

* ``SimulatedAchProvider`` (payments). Test data decides the outcome, by the amount's cents:
  ``.91`` -> return code ``R01`` (insufficient funds), ``.92`` -> ``R02`` (account closed),
  ``.93`` -> ``R03`` (no account / unable to locate), ``.94`` -> ``R10`` (not authorised),
  ``.99`` -> a provider timeout (``ProviderTimeout``, nothing recorded). Any other amount
  settles. Each call is recorded in ``OutboxMessage`` (channel ACH).
* ``EmailBackendProvider``: sends through Django's ``EMAIL_BACKEND`` and records the message.
* ``OutboxProvider`` (SMS and calls): records the message in ``OutboxMessage``; the admin shows
  the outbox. A recipient of ``+15005550001`` fails with ``invalid_number`` (test data).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from servicing.models import OutboxChannel, OutboxMessage
from servicing.statements import bound_insert, run_together

ACH_TEST_RETURN_CODES = {91: "R01", 92: "R02", 93: "R03", 94: "R10"}
ACH_TEST_TIMEOUT_CENTS = 99
OUTBOX_TEST_INVALID_NUMBER = "+15005550001"


class ProviderTimeout(Exception):
    """The provider did not answer in time: the outcome is unknown to the caller."""


@dataclass(frozen=True)
class Message:
    """What to execute: a payment (amount) or a communication (recipient, subject, body)."""

    channel: str  # ACH | CARD | CHECK for payments, EMAIL | SMS | CALL for communications
    loan_id: int | None = None
    recipient: str = ""
    subject: str = ""
    body: str = ""
    amount: Decimal | None = None


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    reference: str = ""
    return_code: str = ""
    detail: str = ""


def _outcome(row: OutboxMessage) -> Outcome:
    return Outcome(
        succeeded=row.succeeded,
        reference=row.reference,
        return_code=row.return_code,
        detail="" if row.succeeded else f"{row.channel} returned {row.return_code}",
    )


class OutboxProvider:
    """Records every message once per idempotency key; the record is the delivery."""

    channel = OutboxChannel.SMS

    def __init__(self, channel: str | None = None):
        if channel:
            self.channel = channel

    def lookup(self, idempotency_key: str) -> Outcome | None:
        row = OutboxMessage.objects.filter(idempotency_key=idempotency_key).first()
        return _outcome(row) if row else None

    def decide(self, message: Message) -> tuple[bool, str]:
        """(succeeded, return code) for the message: the documented test data."""
        if message.recipient == OUTBOX_TEST_INVALID_NUMBER:
            return False, "invalid_number"
        return True, ""

    def deliver(self, message: Message, *, reference: str) -> None:
        """The real delivery, if any (the outbox has none)."""

    # Whether ``deliver`` does something outside the outbox (an e-mail goes out): such a
    # provider looks the key up before delivering; one without (the outboxes, the simulated
    # ACH) inserts at once, the unique key answering a repeat (one statement, not four).
    delivers = False

    def send(self, message: Message, *, idempotency_key: str) -> Outcome:
        if self.delivers:
            existing = self.lookup(idempotency_key)
            if existing is not None:
                return existing
        succeeded, code = self.decide(message)
        reference = f"{self.channel.lower()}-{uuid.uuid4().hex[:16]}" if succeeded else ""
        if succeeded:
            self.deliver(message, reference=reference)
        row = OutboxMessage(
            channel=self.channel,
            idempotency_key=idempotency_key,
            loan_id=message.loan_id,
            recipient=message.recipient[:254],
            subject=message.subject[:200],
            body=message.body,
            amount=message.amount,
            succeeded=succeeded,
            reference=reference,
            return_code=code,
        )
        # the INSERT bound once (servicing.statements), not compiled by the ORM per call
        insert = bound_insert(
            OutboxMessage, **{f.attname: getattr(row, f.attname) for f in _OUTBOX_FIELDS}
        )
        try:
            if transaction.get_connection().in_atomic_block:
                with transaction.atomic():  # a savepoint: the caller's transaction survives
                    run_together(insert)
            else:  # autocommit: the INSERT alone
                run_together(insert)
        except IntegrityError:  # the key was sent before (or concurrently): the first stands
            row = OutboxMessage.objects.get(idempotency_key=idempotency_key)
        return _outcome(row)


_OUTBOX_FIELDS = [f for f in OutboxMessage._meta.concrete_fields if not f.primary_key]


class SmsOutboxProvider(OutboxProvider):
    channel = OutboxChannel.SMS


class CallOutboxProvider(OutboxProvider):
    channel = OutboxChannel.CALL


class EmailBackendProvider(OutboxProvider):
    """Sends through Django's ``EMAIL_BACKEND`` (console in development, locmem in tests, SMTP
    in production), then records it so that a repeated key sends nothing."""

    channel = OutboxChannel.EMAIL
    delivers = True

    def decide(self, message: Message) -> tuple[bool, str]:
        return True, ""

    def deliver(self, message: Message, *, reference: str) -> None:
        EmailMessage(
            subject=message.subject or "A message about your loan",
            body=message.body,
            to=[message.recipient],
            headers={"X-Idempotency-Reference": reference},
        ).send(fail_silently=False)


class SimulatedAchProvider(OutboxProvider):
    """A simulated ACH processor: settles at once unless the test data says otherwise (see the
    module docstring)."""

    channel = OutboxChannel.ACH

    def decide(self, message: Message) -> tuple[bool, str]:
        cents = int((message.amount or Decimal(0)) * 100) % 100
        if cents == ACH_TEST_TIMEOUT_CENTS:
            raise ProviderTimeout("The simulated ACH processor timed out (test amount .99).")
        code = ACH_TEST_RETURN_CODES.get(cents)
        return (False, code) if code else (True, "")


@cache
def _provider(path: str):
    return import_string(path)()


def get_provider(kind: str):
    """``kind`` is ``PAYMENT``, ``EMAIL``, ``SMS`` or ``CALL``."""
    return _provider(getattr(settings, f"{kind}_PROVIDER"))


def provider_for_channel(channel: str):
    return get_provider({"EMAIL": "EMAIL", "SMS": "SMS", "CALL": "CALL"}.get(channel, "PAYMENT"))


def provider_name(provider) -> str:
    return type(provider).__name__
