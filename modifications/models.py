"""Loan modifications (LoanPro seed 004): "a new loan placed on top of the old one" as of the
modification date. A ``Modification`` records the draft (or activated) setup it created, the
setup it replaced, the transactions kept (persistent) and those it reversed, and who did what.

Statuses: ``DRAFT`` -> ``ACTIVE`` (activated) and ``DRAFT``/``ACTIVE`` -> ``CANCELLED``, each
checked by its command; at most one ``DRAFT`` per loan is a database constraint.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from loans.models import MONEY, ZERO, Loan, LoanSetup, Schedule

PERSISTENT_GROUPS = ("payments", "charges", "advancements", "credits")


class ModificationStatus(models.TextChoices):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


class Modification(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="modifications")
    status = models.CharField(
        max_length=16, choices=ModificationStatus.choices, default=ModificationStatus.DRAFT
    )
    modification_date = models.DateField()
    setup = models.ForeignKey(
        LoanSetup,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the setup this modification created (deleted when a draft is cancelled)",
    )
    previous_setup = models.ForeignKey(
        LoanSetup, on_delete=models.PROTECT, related_name="+", help_text="the setup it replaced"
    )
    previous_schedule = models.ForeignKey(
        Schedule,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the schedule version current before activation",
    )
    schedule = models.ForeignKey(
        Schedule,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the schedule version activation created",
    )
    carried_principal = models.DecimalField(**MONEY, default=ZERO)
    carried_interest = models.DecimalField(**MONEY, default=ZERO)
    carried_fees = models.DecimalField(**MONEY, default=ZERO)
    persistent_transactions = models.JSONField(
        default=dict, blank=True, help_text='{"payments": ["12"], "charges": [], ...}'
    )
    reversed_transaction_ids = models.JSONField(default=list, blank=True)
    draft_terms = models.JSONField(
        default=dict, blank=True, help_text="the draft's terms when a draft is cancelled"
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["loan_id", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["loan"],
                condition=Q(status="DRAFT"),
                name="one_draft_modification_per_loan",
            ),
        ]

    def __str__(self) -> str:
        return f"Modification {self.pk} of loan {self.loan_id} ({self.status})"

    @property
    def carried_total(self):
        return self.carried_principal + self.carried_interest + self.carried_fees

    @property
    def persistent_ids(self) -> list[int]:
        return sorted(
            int(i)
            for group in PERSISTENT_GROUPS
            for i in self.persistent_transactions.get(group, [])
        )
