"""API routes of the servicing app (scheduled payments and communications, cancel servicing)."""

from django.urls import path

from loans.api_common import loan_paths
from servicing import api, auth_api, clock_api


def borrower_paths(suffix: str, view, name: str) -> list:
    """Both forms of a borrower path, as ``loan_paths`` does for a loan."""
    return [
        path(f"borrowers/<int:borrower_id>{suffix}", view, name=name),
        path(
            f"borrowers/external-id/<str:external_id>{suffix}", view, name=f"{name}-by-external-id"
        ),
    ]


urlpatterns: list = [
    path("auth/token", auth_api.TokenView.as_view(), name="auth-token"),
    path("portfolio/summary", api.PortfolioSummaryView.as_view(), name="portfolio-summary"),
    *loan_paths("/cancel-servicing", api.CancelServicingView.as_view(), "loan-cancel-servicing"),
    *borrower_paths(
        "/cancel-servicing", api.BorrowerCancelServicingView.as_view(), "borrower-cancel-servicing"
    ),
    *borrower_paths(
        "/cancel-communications",
        api.BorrowerCancelCommunicationsView.as_view(),
        "borrower-cancel-communications",
    ),
    *loan_paths("/resume-servicing", api.ResumeServicingView.as_view(), "loan-resume-servicing"),
    *loan_paths(
        "/scheduled-payments", api.ScheduledPaymentsView.as_view(), "loan-scheduled-payments"
    ),
    *loan_paths(
        "/scheduled-communications",
        api.ScheduledCommunicationsView.as_view(),
        "loan-scheduled-communications",
    ),
    *loan_paths(
        "/communication-schedules",
        api.CommunicationSchedulesView.as_view(),
        "loan-communication-schedules",
    ),
    path(
        "scheduled-payments/<int:item_id>/cancel",
        api.CancelScheduledPaymentView.as_view(),
        name="scheduled-payment-cancel",
    ),
    path(
        "scheduled-communications/<int:item_id>/cancel",
        api.CancelScheduledCommunicationView.as_view(),
        name="scheduled-communication-cancel",
    ),
    path(
        "communication-schedules/<int:item_id>/cancel",
        api.CancelCommunicationScheduleView.as_view(),
        name="communication-schedule-cancel",
    ),
    path("jobs", clock_api.JobsView.as_view(), name="jobs"),
    path("jobs/<int:job_id>", clock_api.JobDetailView.as_view(), name="job-detail"),
    path("dispatch", clock_api.DispatchView.as_view(), name="dispatch"),
    *loan_paths("/autopay", clock_api.LoanAutopayView.as_view(), "loan-autopay"),
    path(
        "autopays/<int:autopay_id>/cancel",
        clock_api.CancelAutopayView.as_view(),
        name="autopay-cancel",
    ),
    *loan_paths("/snapshots", clock_api.LoanSnapshotsView.as_view(), "loan-snapshots"),
    *loan_paths(
        "/dispatch-attempts",
        clock_api.LoanDispatchAttemptsView.as_view(),
        "loan-dispatch-attempts",
    ),
]
