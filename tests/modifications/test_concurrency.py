"""Races on PostgreSQL: two operators starting a modification of the same loan at once."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.db import connection

from loans.exceptions import DomainError
from modifications import services
from modifications.models import Modification


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creations_make_one_draft(operator, modifiable):
    barrier = threading.Barrier(2)
    outcomes = []

    def create():
        try:
            barrier.wait()
            services.create_modification(
                loan=modifiable,
                modification_date=date(2025, 7, 15),
                persistent_transactions={},
                actor=operator,
            )
            outcomes.append("created")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "modification_in_progress"]
    assert Modification.objects.filter(loan=modifiable).count() == 1
