"""Static files storage for production (DEBUG off).

whitenoise's manifest storage raises ``Missing staticfiles manifest entry`` for every static URL
until ``collectstatic`` has written ``staticfiles.json``: an install that ran ``migrate`` and
started gunicorn, but skipped ``collectstatic``, answered every admin page with a 500. Without a
manifest this storage gives the plain names instead, and settings turn on
``WHITENOISE_USE_FINDERS`` so whitenoise serves them from the apps. After ``collectstatic`` the
hashed, compressed names are used as before.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def stored_name(self, name):
        if not self.hashed_files:  # no manifest yet: collectstatic has not run
            return name
        return super().stored_name(name)
