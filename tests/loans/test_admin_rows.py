"""The loan changelist's rows (``loans.templatetags.loan_admin_list``, issue 14) are Django's
``items_for_result`` HTML, cell for cell: same classes, links (with the preserved filters),
empty values, choice labels and escaping."""

from datetime import date

import pytest
from django.contrib.admin.templatetags import admin_list

from loans.models import Borrower, Loan
from loans.templatetags.loan_admin_list import _rows
from tests.factories import make_active_loan, make_loan, set_business_date

pytestmark = pytest.mark.django_db


def django_rows(cl) -> list[list[str]]:
    return [list(row) for row in admin_list.results(cl)]


@pytest.fixture
def loans(operator):
    set_business_date(date(2026, 3, 15))
    active = make_active_loan(actor=operator, external_id='A&B<"1>')
    Borrower.objects.filter(pk=active.borrower_id).update(
        first_name="<b>Zoë</b>", last_name="O'Hara"
    )
    Loan.objects.filter(pk=active.pk).update(sub_status="CONTRACT_TERMINATION")
    pending = make_loan(actor=operator, external_id="PEND-1")
    Loan.objects.filter(pk=pending.pk).update(display_id=None)
    return active, pending


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status__exact=ACTIVE",
        "?q=PEND",
        "?sub_status=none&o=2",
        "?servicing_status__exact=ACTIVE&p=1",
    ],
)
def test_the_rows_are_djangos(client, operator, loans, query):
    client.force_login(operator)
    response = client.get(f"/admin/loans/loan/{query}")
    assert response.status_code == 200
    cl = response.context["cl"]
    ours = [list(row) for row in _rows(cl)]
    assert ours == django_rows(cl)
    assert ours  # every query lists a loan
    html = response.content.decode()
    for row in ours:
        assert "".join(row) in html


def test_the_cells_say_what_the_loan_is(client, operator, loans):
    active, pending = loans
    client.force_login(operator)
    html = client.get("/admin/loans/loan/?status__exact=ACTIVE").content.decode()
    assert (
        f'<th class="field-display_id"><a href="/admin/loans/loan/{active.pk}/change/'
        '?_changelist_filters=status__exact%3DACTIVE">' in html
    )
    assert "A&amp;B&lt;&quot;1&gt;</a></td>" in html
    assert '<td class="field-borrower_name">&lt;b&gt;Zoë&lt;/b&gt; O&#x27;Hara</td>' in html
    assert '<td class="field-sub_status">Contract Termination</td>' in html
    pending_html = client.get("/admin/loans/loan/?q=PEND").content.decode()
    assert (
        f'<th class="field-display_id"><a href="/admin/loans/loan/{pending.pk}/change/'
        in pending_html
    )
    assert '?_changelist_filters=q%3DPEND">-</a></th>' in pending_html
