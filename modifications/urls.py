"""API routes of the modifications app (both loan path forms)."""

from loans.api_common import loan_paths
from modifications import api

urlpatterns = [
    *loan_paths("/modifications/pre-mod-test", api.PreModTestView.as_view(), "loan-pre-mod-test"),
    *loan_paths(
        "/modifications/cancel", api.CancelModificationView.as_view(), "loan-modification-cancel"
    ),
    *loan_paths("/modifications", api.ModificationsView.as_view(), "loan-modifications"),
    *loan_paths("/activate", api.ActivateView.as_view(), "loan-activate"),
    *loan_paths("/roll-payment", api.RollPaymentView.as_view(), "loan-roll-payment"),
]
