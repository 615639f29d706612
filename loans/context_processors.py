from loans.selectors import get_business_date


def business_date(request):
    """The business date for the admin header (only on admin pages, to spare other requests)."""
    if not request.path.startswith("/admin"):
        return {}
    return {"business_date": get_business_date()}
