"""How the admin writes money, dates and times: one place, so every page agrees (DESIGN §7:
``YYYY-MM-DD``, thousands separators, never ``-0.00``, a time in the borrower's zone and UTC)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")


def money(value, *, blank: str = "-") -> str:
    """``1234.5`` -> ``1,234.50``; a negative zero is written ``0.00``."""
    if value is None or value == "":
        return blank
    try:
        amount = Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError):
        return str(value)
    if amount == 0:
        amount = abs(amount)
    return f"{amount:,}"


def money_column(field: str, description: str | None = None):
    """A changelist column (``list_display``) writing the model's money ``field`` with
    :func:`money`, sortable by it: raw DecimalFields showed ``10000.00`` on the list pages."""

    def column(obj) -> str:
        return money(getattr(obj, field))

    column.__name__ = f"{field}_display"
    column.short_description = description or field.replace("_", " ")
    column.admin_order_field = field
    return column


def iso_date(value, *, blank: str = "—") -> str:
    if value is None or value == "":
        return blank
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def zone_of(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_and_utc(moment: datetime | None, zone_name: str | None) -> str:
    """``2026-02-18 09:30 America/New_York (14:30 UTC)``; the UTC date is written when it
    differs from the local one."""
    if moment is None:
        return "—"
    zone = zone_of(zone_name)
    local = moment.astimezone(zone)
    utc = moment.astimezone(UTC)
    utc_text = f"{utc:%H:%M}" if utc.date() == local.date() else f"{utc:%Y-%m-%d %H:%M}"
    return f"{local:%Y-%m-%d %H:%M} {zone.key} ({utc_text} UTC)"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 payment``, ``2 payments``."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


_WORDS = {"CHARGE_OFF": "charge-off", "SEMI_MONTHLY": "semi-monthly"}


def words(value) -> str:
    """An enum value as it reads in a sentence: ``CONTRACT_TERMINATION`` -> ``contract
    termination``, ``CHARGE_OFF`` -> ``charge-off`` (messages never show a raw enum name)."""
    text = str(value)
    return _WORDS.get(text, text.replace("_", " ").lower())


def article(text: str) -> str:
    """``text`` with its indefinite article: ``an active``, ``a pending``."""
    return f"{'an' if text[:1].lower() in 'aeiou' else 'a'} {text}"
