"""The loan page lists the loan's modifications (a section registered by the app)."""

import pytest

from modifications import services
from modifications.models import Modification
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
    modification = Modification.objects.get(loan=modifiable)
    # Its row: id, DRAFT, the date, its draft setup, the balance carried, the kept repayment,
    # nothing reversed yet, who created it.
    assert (
        f"<tr><td>{modification.pk}</td><td>DRAFT</td><td>2025-07-15</td>"
        f'<td>{modification.setup_id}</td><td class="num">9353.58</td>'
        f"<td>{modifiable.kept_tx.pk}</td><td>—</td><td>operator</td>"
    ) in html
