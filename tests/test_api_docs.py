"""Every operation in Swagger has a summary and a description (issue 15)."""

from tests.api_catalog import api_operations, operation


def test_every_operation_has_a_summary_and_a_description():
    missing = [
        f"{method} {path}"
        for method, path in api_operations()
        if not operation(method, path).get("summary")
        or not operation(method, path).get("description")
    ]
    assert missing == []


def test_both_path_forms_share_the_summary():
    assert operation("GET", "/api/v1/loans/{loan_id}/setup")["summary"] == (
        "Read the setup in force (or the draft)"
    )
    assert operation("GET", "/api/v1/loans/external-id/{external_id}/setup")["summary"] == (
        "Read the setup in force (or the draft)"
    )
