"""API routes of the modifications app."""

urlpatterns: list = []
