"""The audit trail in sentences (DESIGN §7): each ``LoanEvent`` as a headline (what was done,
with the amount and date of its transaction) and one line per change, ``field: before → after``.
Pure formatting over the stored JSON; nothing is queried here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from loans.formatting import money

MONEY_WORDS = ("amount", "payment", "principal", "interest", "fees", "total", "balance", "carried")
NUMBER = re.compile(r"^-?\d+\.\d{2}$")
LABELS = {
    "setup.active": "terms locked",
    "modificationInProgress": "modification in progress",
    "transaction.reversed": "transaction reversed",
}


@dataclass(frozen=True)
class EventLines:
    headline: str
    changes: list[str]


def words(name: str) -> str:
    """``loan_amount`` / ``loanAmount`` / ``subStatus`` -> ``loan amount`` / ``sub status``."""
    if name in LABELS:
        return LABELS[name]
    name = name.split(".")[-1]
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).replace("_", " ")
    return name.lower()


def value_text(name: str, value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float) and any(w in name.lower() for w in MONEY_WORDS):
        text = str(value)
        if NUMBER.match(text):
            return money(text)
    if isinstance(value, list):
        return ", ".join(value_text(name, v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{words(k)} {value_text(k, v)}" for k, v in value.items()) or "—"
    return str(value)


def _portions(result: dict) -> str:
    parts = [
        f"{label} {money(result[key])}"
        for key, label in (
            ("principalPortion", "principal"),
            ("interestPortion", "interest"),
            ("feesPortion", "fees"),
        )
        if key in result
    ]
    return f" ({', '.join(parts)})" if parts else ""


def headline(event, transactions: dict | None = None) -> str:
    """What the command did, in words; ``transactions`` (id -> Transaction) gives the amount
    and date of a reversed transaction."""
    command, data, result = event.command, event.input or {}, event.result or {}
    if command.startswith("post_") and "amount" in data:
        return (
            f"{str(data.get('type', command[5:])).upper()} of {money(data['amount'])} on "
            f"{data.get('date', '—')}{_portions(result)}"
        )
    if command == "reverse_transaction":
        tx_id = data.get("transactionId")
        tx = (transactions or {}).get(tx_id)
        if tx is not None:
            return f"Reversed {tx.type} {tx_id} of {money(tx.amount)} on {tx.date:%Y-%m-%d}"
        return f"Reversed transaction {tx_id}"
    if command == "terminate_contract" and "amount" in result:
        return (
            f"Contract terminated: CONTRACT_TERMINATION of {money(result['amount'])}"
            f"{_portions(result)}"
        )
    text = command.replace("_", " ").capitalize()
    if command == "cancel_servicing" and data.get("reason"):
        text += f" ({data['reason']})"
    return text


def describe(event, transactions: dict | None = None) -> EventLines:
    lines = []
    for name, pair in (event.changes or {}).items():
        if isinstance(pair, list | tuple) and len(pair) == 2:
            before, after = pair
            lines.append(f"{words(name)}: {value_text(name, before)} → {value_text(name, after)}")
        else:
            lines.append(f"{words(name)}: {value_text(name, pair)}")
    return EventLines(headline=headline(event, transactions), changes=lines)
