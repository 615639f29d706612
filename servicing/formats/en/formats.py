"""One date format everywhere in the admin (DESIGN §7): ``YYYY-MM-DD``, times ``HH:MM:SS``.
Django's own English formats (``Feb. 18, 2026``) are replaced for every page and list."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i:s"
MONTH_DAY_FORMAT = "m-d"
YEAR_MONTH_FORMAT = "Y-m"
