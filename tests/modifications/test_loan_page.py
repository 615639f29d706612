"""The loan page lists the loan's modifications (a section registered by the app)."""

import pytest

from modifications import services
from tests.modifications.conftest import MOD_DATE

pytestmark = pytest.mark.django_db


def test_loan_page_lists_modifications(client, operator, modifiable):
    client.force_login(operator)
    url = f"/admin/loans/loan/{modifiable.pk}/change/"
    assert 'id="loan-modifications"' not in client.get(url).content.decode()
    services.create_modification(
        loan=modifiable,
        modification_date=MOD_DATE,
        persistent_transactions={"payments": [str(modifiable.kept_tx.pk)]},
        actor=operator,
    )
    html = client.get(url).content.decode()
    assert 'id="loan-modifications"' in html
    assert "DRAFT" in html and "2025-07-15" in html
    assert "9353.58" in html  # the balance carried into the modification
