"""Django's SQLite backend with SQLite's real parameter limit.

Django assumes SQLite's old default of 999 bound parameters, so ``bulk_create`` and
``bulk_update`` split a 360-row schedule into many statements. SQLite 3.32+ allows 32,766, which
keeps our writes at one statement per kind, as on PostgreSQL.
"""

import sqlite3

from django.db.backends.sqlite3 import base, features

LIMIT = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = LIMIT


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
