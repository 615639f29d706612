from django.urls import path

from loans import api
from loans.api_common import loan_paths

urlpatterns = [
    path("business-date", api.BusinessDateView.as_view(), name="business-date"),
    path("loans", api.LoanListCreateView.as_view(), name="loan-list"),
    path("loan-setups/<int:setup_id>", api.SetupUpdateView.as_view(), name="loan-setup"),
    *loan_paths("", api.LoanDetailView.as_view(), "loan-detail"),
    *loan_paths("/setup", api.LoanSetupView.as_view(), "loan-setup-current"),
    *loan_paths("/schedules", api.LoanSchedulesView.as_view(), "loan-schedules"),
    # "/activate" is routed by modifications.urls (one path, two commands: see its view).
    *loan_paths("/transactions", api.TransactionsView.as_view(), "loan-transactions"),
    *loan_paths(
        "/transactions/<int:tx_id>", api.TransactionDetailView.as_view(), "loan-transaction"
    ),
    *loan_paths("/events", api.LoanEventsView.as_view(), "loan-events"),
    *loan_paths("/payoff", api.LoanPayoffView.as_view(), "loan-payoff"),
]
