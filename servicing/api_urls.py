"""API routes of the servicing app (scheduled payments and communications, cancel servicing)."""

urlpatterns: list = []
