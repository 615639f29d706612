"""Loan terms: the setup fields, their API names, limits and defaults, ``validate_terms``, and
the one way to build the amortization engine's ``Terms`` from a setup or from a dict of
setup values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from loans.exceptions import InvalidRequestError, field_error
from loans.formatting import words
from loans.models import (
    CalcType,
    DaysInYear,
    LoanSetup,
    PaymentFrequency,
    RoundingMode,
    ScheduleEngine,
    TerminationInterest,
)
from loans.schedules import (
    PERIODS_PER_YEAR,
    NegativeAmortizationError,
    PaymentTooSmallError,
    Terms,
    generate_schedule,
)

MAX_AMOUNT = Decimal("999999999999.99")
MAX_TERM = Decimal("1200")
MAX_RATE = Decimal("1000")
MAX_GRACE_DAYS = 366  # a late fee's grace: at most a year (a longer one is surely a typo)
MAX_YEARS = 50  # the longest tenor accepted: beyond it a cent-rounded payment can fall below
# the interest of some periods and the balance compounds for centuries.
# The latest year a schedule may start in: MAX_YEARS of installments still end before the
# calendar does (a first payment on 9999-12-31 was "year 10000 is out of range").
LAST_START_YEAR = date.max.year - MAX_YEARS - 1

SETUP_FIELDS = (
    "loan_amount",
    "loan_rate",
    "loan_term",
    "payment_frequency",
    "contract_date",
    "first_payment_date",
    "payment",
    "calc_type",
    "days_in_year",
    "rounding_mode",
    "termination_interest",
    "interest_recalculation",
    "late_fee_amount",
    "late_fee_grace_days",
)
# Optional terms: None means "none" (no late fee). Every other field is required.
OPTIONAL_FIELDS = frozenset({"payment", "late_fee_amount", "late_fee_grace_days"})
# API (camelCase) names, used in field errors so API consumers can map them to their input.
API_NAMES = {
    "loan_amount": "loanAmount",
    "loan_rate": "loanRate",
    "loan_term": "loanTerm",
    "payment_frequency": "paymentFrequency",
    "contract_date": "contractDate",
    "first_payment_date": "firstPaymentDate",
    "payment": "payment",
    "calc_type": "calcType",
    "days_in_year": "daysInYear",
    "rounding_mode": "roundingMode",
    "termination_interest": "terminationInterest",
    "interest_recalculation": "interestRecalculation",
    "late_fee_amount": "lateFeeAmount",
    "late_fee_grace_days": "lateFeeGraceDays",
}
CHOICES = {
    "payment_frequency": PaymentFrequency,
    "calc_type": CalcType,
    "days_in_year": DaysInYear,
    "rounding_mode": RoundingMode,
    "termination_interest": TerminationInterest,
}
SETUP_DEFAULTS = {
    "payment_frequency": PaymentFrequency.MONTHLY,
    "calc_type": CalcType.EQUAL_INSTALLMENTS,
    "days_in_year": DaysInYear.FREQUENCY,
    "rounding_mode": RoundingMode.HALF_UP,
    "termination_interest": TerminationInterest.ALL_OUTSTANDING,
    "interest_recalculation": False,
    "late_fee_amount": None,
    "late_fee_grace_days": None,
}


def terms_from(values: dict) -> Terms:
    """The engine's ``Terms`` from setup values (model field names, as ``validate_terms`` takes
    or returns them): the payment is computed when it is None or ``payment_is_given`` is
    false."""
    return Terms(
        loan_amount=values["loan_amount"],
        annual_rate_percent=values["loan_rate"],
        term=values["loan_term"],
        frequency=values["payment_frequency"],
        contract_date=values["contract_date"],
        first_payment_date=values["first_payment_date"],
        payment=values.get("payment") if values.get("payment_is_given", True) else None,
        calc_type=values["calc_type"],
        days_in_year=values["days_in_year"],
        rounding_mode=values["rounding_mode"],
    )


def setup_values(setup: LoanSetup) -> dict:
    """A setup's terms as ``validate_terms`` takes them: a computed payment is None."""
    values = {name: getattr(setup, name) for name in SETUP_FIELDS}
    if not setup.payment_is_given:
        values["payment"] = None
    return values


def setup_terms(setup: LoanSetup) -> dict:
    """A setup's stored terms, the payment as stored and whether it was given (audit rows)."""
    return {name: getattr(setup, name) for name in (*SETUP_FIELDS, "payment_is_given")}


def terms_for(setup: LoanSetup) -> Terms:
    return terms_from(setup_terms(setup))


def validate_terms(values: dict) -> dict:
    """Validate a complete set of setup terms (model field names). Returns the cleaned values
    including the computed payment; raises InvalidRequestError listing every problem."""
    errors = []
    cleaned = dict(values)
    for name in SETUP_FIELDS:
        if name in OPTIONAL_FIELDS:
            continue
        if cleaned.get(name) in (None, ""):
            errors.append(field_error(API_NAMES[name], "This field is required.", "required"))
    for name, choices in CHOICES.items():
        value = cleaned.get(name)
        if value not in (None, "") and value not in choices.values:
            errors.append(
                field_error(
                    API_NAMES[name],
                    f"{value!r} is not one of {', '.join(choices.values)}.",
                    "invalid_choice",
                )
            )
    for name in ("loan_amount", "loan_rate", "loan_term", "payment"):
        value = cleaned.get(name)
        if value is None:
            continue
        try:
            value = Decimal(str(value))
            if not value.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors.append(field_error(API_NAMES[name], "A number is required.", "invalid"))
            continue
        cleaned[name] = value
    amount, rate = cleaned.get("loan_amount"), cleaned.get("loan_rate")
    term, payment = cleaned.get("loan_term"), cleaned.get("payment")
    if isinstance(amount, Decimal) and not (0 < amount <= MAX_AMOUNT):
        errors.append(field_error("loanAmount", "Must be positive.", "min_value"))
    elif isinstance(amount, Decimal) and amount != amount.quantize(Decimal("0.01")):
        errors.append(
            field_error("loanAmount", "At most two decimal places.", "max_decimal_places")
        )
    if isinstance(rate, Decimal) and not (0 <= rate <= MAX_RATE):
        errors.append(field_error("loanRate", f"Must be between 0 and {MAX_RATE}.", "out_of_range"))
    if isinstance(term, Decimal):
        if not (0 < term <= MAX_TERM):
            errors.append(
                field_error("loanTerm", f"Must be above 0 and at most {MAX_TERM}.", "out_of_range")
            )
        elif cleaned.get("payment_frequency") in PERIODS_PER_YEAR and term > (
            MAX_YEARS * PERIODS_PER_YEAR[cleaned["payment_frequency"]]
        ):
            errors.append(
                field_error(
                    "loanTerm",
                    f"At most {MAX_YEARS} years of installments.",
                    "term_too_long",
                )
            )
        elif term != term.to_integral_value() and payment is None:
            errors.append(
                field_error(
                    "loanTerm",
                    "A fractional term needs a given payment (roll the payment with termExact).",
                    "fractional_term_requires_payment",
                )
            )
    if isinstance(payment, Decimal) and not (0 < payment <= MAX_AMOUNT):
        errors.append(field_error("payment", "Must be positive.", "min_value"))
    errors.extend(_late_fee_errors(cleaned))
    recalculating = cleaned.get("interest_recalculation")
    if recalculating not in (None, True, False):
        errors.append(field_error("interestRecalculation", "Must be true or false.", "invalid"))
    elif recalculating and cleaned.get("calc_type") == CalcType.EQUAL_PRINCIPAL:
        errors.append(
            field_error(
                "interestRecalculation",
                "Interest recalculation (Fineract's progressive loan) needs EQUAL_INSTALLMENTS.",
                "recalculation_requires_equal_installments",
            )
        )
    contract, first = cleaned.get("contract_date"), cleaned.get("first_payment_date")
    if isinstance(contract, date) and isinstance(first, date) and first <= contract:
        errors.append(
            field_error(
                "firstPaymentDate", "Must be after the contract date.", "before_contract_date"
            )
        )
    for name, value in (("contractDate", contract), ("firstPaymentDate", first)):
        if isinstance(value, date) and value.year > LAST_START_YEAR:
            errors.append(
                field_error(
                    name,
                    f"Must be before {LAST_START_YEAR + 1}-01-01: the schedule would run past "
                    "9999-12-31.",
                    "out_of_range",
                )
            )
    if errors:
        raise InvalidRequestError(
            "The loan terms are invalid.", code="invalid_terms", errors=errors
        )
    try:
        schedule = generate_schedule(
            terms_from({**cleaned, "payment": payment, "payment_is_given": True})
        )
    except NegativeAmortizationError as exc:
        field = (
            "payment"
            if payment is not None
            else "firstPaymentDate"
            if exc.period == 1
            else "loanTerm"
        )
        raise InvalidRequestError(
            f"The terms amortize negatively: installment {exc.period}'s interest {exc.interest} "
            f"is above its payment {exc.payment}, so the balance would grow.",
            code="negative_amortization",
            errors=[
                field_error(
                    field,
                    f"Installment {exc.period}'s interest {exc.interest} is above its payment "
                    f"{exc.payment}.",
                    "negative_amortization",
                )
            ],
        )
    except PaymentTooSmallError:
        raise InvalidRequestError(
            "The payment does not cover one period's interest.",
            code="payment_too_small",
            errors=[field_error("payment", "Too small to cover interest.", "payment_too_small")],
        )
    except (ArithmeticError, OverflowError, ValueError) as exc:
        raise InvalidRequestError(
            f"The loan terms cannot be amortized: {exc}.", code="invalid_terms"
        )
    check_installments_not_zero(schedule)
    cleaned["payment_is_given"] = payment is not None
    cleaned["payment"] = payment if payment is not None else schedule.payment
    return cleaned


def _late_fee_errors(cleaned: dict) -> list[dict]:
    """``lateFeeAmount`` (> 0, two places) and ``lateFeeGraceDays`` (0 to ``MAX_GRACE_DAYS``)
    are set together or not at all (both null: no late fee). A grace of 0 charges the fee at
    the close of the due date itself; requiring both spares the reader of a setup from guessing
    what an amount without a grace would mean. Cleans ``cleaned`` in place."""
    errors = []
    amount = cleaned.get("late_fee_amount")
    if amount is not None:
        try:
            amount = Decimal(str(amount))
            if not amount.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors.append(field_error("lateFeeAmount", "A number is required.", "invalid"))
            amount = None
        else:
            cleaned["late_fee_amount"] = amount
            if not (0 < amount <= MAX_AMOUNT):
                errors.append(field_error("lateFeeAmount", "Must be positive.", "min_value"))
            elif amount != amount.quantize(Decimal("0.01")):
                errors.append(
                    field_error(
                        "lateFeeAmount", "At most two decimal places.", "max_decimal_places"
                    )
                )
    grace = cleaned.get("late_fee_grace_days")
    if grace is not None:
        if isinstance(grace, bool) or not isinstance(grace, int):
            errors.append(field_error("lateFeeGraceDays", "An integer is required.", "invalid"))
        elif not (0 <= grace <= MAX_GRACE_DAYS):
            errors.append(
                field_error(
                    "lateFeeGraceDays", f"Must be between 0 and {MAX_GRACE_DAYS}.", "out_of_range"
                )
            )
    if (cleaned.get("late_fee_amount") is None) != (grace is None):
        missing = "lateFeeGraceDays" if grace is None else "lateFeeAmount"
        errors.append(
            field_error(
                missing,
                "lateFeeAmount and lateFeeGraceDays are set together (both null: no late fee).",
                "late_fee_incomplete",
            )
        )
    return errors


def check_installments_not_zero(schedule) -> None:
    """Issue 16: terms whose installment rounds to 0.00 (0.05 over 360 periods, or at rate 0)
    cannot be amortized: the setup's payment must be positive."""
    if schedule.payment > 0 and all(period.total > 0 for period in schedule.periods):
        return
    detail = "An installment rounds to 0.00: raise the amount or shorten the term."
    raise InvalidRequestError(
        f"The loan terms are invalid. {detail}",
        code="payment_rounds_to_zero",
        errors=[
            field_error("loanAmount", detail, "payment_rounds_to_zero"),
            field_error("loanTerm", detail, "payment_rounds_to_zero"),
        ],
    )


def check_recalculation_engine(values: dict, schedule_engine: str) -> None:
    """Interest recalculation re-derives interest from the transactions: DYNAMIC only (400)."""
    if values.get("interest_recalculation") and schedule_engine != ScheduleEngine.DYNAMIC:
        raise InvalidRequestError(
            "Interest recalculation needs the dynamic schedule engine.",
            code="recalculation_requires_dynamic",
            errors=[
                field_error(
                    "interestRecalculation",
                    f"Not available with the {words(schedule_engine)} engine.",
                    "recalculation_requires_dynamic",
                )
            ],
        )


def business_date_problem(value: date) -> str | None:
    """Why ``value`` cannot be the business date, or None: it is bounded as a schedule's start
    is (``LAST_START_YEAR``), since every command and quote computes dates after it (a loan
    activated on it, a payoff quote's next day, the autopay horizon); on 9999-12-31 those were
    OverflowErrors (500s)."""
    if value.year > LAST_START_YEAR:
        return (
            f"Must be before {LAST_START_YEAR + 1}-01-01: the dates computed from it (a schedule, "
            "a payoff quote, the autopay horizon) would run past 9999-12-31."
        )
    return None


def path_key_problem(value: str | None) -> str | None:
    """Why an externalId cannot be a path key (DESIGN §6: loans and borrowers are reached by
    ``.../external-id/{externalId}/...``), or None. "/" is refused (encoded as %2F it is still
    decoded before routing, so such a loan could never be reached; a path converter taking "/"
    would make ``A/transactions`` ambiguous), with "\\" (browsers turn it into "/"),
    control characters, and "." and ".." (clients collapse those segments). Anything else is
    reachable percent-encoded."""
    if not value:
        return None
    if value in {".", ".."}:
        return f"{value!r} is not a path segment an /external-id/ path can carry."
    bad = sorted({ch for ch in value if ch in "/\\" or ord(ch) < 32 or ord(ch) == 127})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        return f"It contains {shown}, which an /external-id/ path segment cannot carry."
    return None


# The same rule as a pattern, for the API schema (drf-spectacular publishes a RegexValidator's
# pattern) and the serializers: no "/", "\\", control character, nor "." / ".." alone.
PATH_KEY_PATTERN = r"^(?!\.\.?$)[^/\\\x00-\x1f\x7f]*$"


class PathKeyValidator(RegexValidator):
    """An externalId a path segment can carry; the refusal says why (path_key_problem)."""

    code = "invalid_external_id"

    def __init__(self):
        super().__init__(PATH_KEY_PATTERN, code=self.code)

    def __call__(self, value):
        problem = path_key_problem(value)
        if problem:
            raise ValidationError(problem, code=self.code)
