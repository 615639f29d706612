"""gunicorn settings for production (``gunicorn servicing.wsgi`` reads this file by default).

* No ``Server`` banner: gunicorn writes ``Server: gunicorn`` on every response and has no
  setting to turn it off, so its response's default headers are filtered here (the master
  imports this file before forking the workers).
* ``timeout`` is the request timeout ``REQUEST_TIMEOUT_SECONDS`` the Idempotency-Key lease uses.
"""

import os

from gunicorn.http import wsgi

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
timeout = int(os.environ.get("REQUEST_TIMEOUT_SECONDS", "60"))

_default_headers = wsgi.Response.default_headers


def _default_headers_without_server(self):
    return [h for h in _default_headers(self) if not h.lower().startswith("server:")]


wsgi.Response.default_headers = _default_headers_without_server
