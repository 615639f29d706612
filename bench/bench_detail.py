"""``GET /loans/{id}?associations=all`` (360 periods, 1,000 transactions) under gunicorn.

A gunicorn (``--no-control-socket``, 2 sync workers, ``bench.settings``: DEBUG off) serves the
throwaway database; 4 client threads send the requests. Each round sends ``PER_ROUND``
requests to the API and as many to the anchor, a hand-written view returning the same JSON
with the same authentication (``bench.hand``; checked equal first), alternating which goes
first. Printed: requests per second of each, the paired ratio API/hand (goal >= 0.8), and each
worker's resident memory after 1,000 API requests (goal <= 100 MiB).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.contrib.auth import get_user_model

from bench.bench_core import AS_OF, make_loan
from bench.db import throwaway_database
from bench.measure import Samples, load_line, print_figure
from loans.models import BusinessDate

ROUNDS = int(os.environ.get("BENCH_REPEAT", "7"))
PER_ROUND = 40
CLIENTS = 4
WORKERS = 2
RSS_AFTER = 1000
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, token: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": f"Token {token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def login(port: int, username: str, password: str) -> str:
    """A token issued by the server under test: its ``credential`` is the user's session auth
    hash under the server's own SECRET_KEY (a token issued by this process, under another key,
    is refused and revoked as if the password had changed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        body = json.dumps({"username": username, "password": password})
        conn.request(
            "POST", "/api/v1/auth/token", body=body, headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    assert response.status == 200, (response.status, payload[:300])
    return json.loads(payload)["token"]


def burst(port: int, path: str, token: str, count: int) -> float:
    """``count`` requests from ``CLIENTS`` threads; returns the wall seconds."""
    left = iter(range(count))
    lock = threading.Lock()
    failures = []

    def client():
        while True:
            with lock:
                if next(left, None) is None:
                    return
            status, _ = get(port, path, token)
            if status != 200:
                failures.append(status)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed: {failures[:5]}")
    return time.perf_counter() - started


def worker_rss_mib(master_pid: int) -> list[float]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    sizes = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def start_gunicorn(port: int, database: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-not-a-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "THROTTLE_USER": "100000000/hour",
    }
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "bench.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--no-control-socket",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )


def run(connection) -> None:
    user = get_user_model().objects.create_superuser("bench", password="bench-pass-123")
    BusinessDate.objects.update_or_create(pk=1, defaults={"date": AS_OF})
    loan = make_loan(user, periods=360, repayments=1000)
    d = connection.settings_dict
    database = f"postgres://{d['USER'] or 'root'}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"
    port = free_port()
    api, hand = f"/api/v1/loans/{loan.pk}?associations=all", f"/bench/hand/{loan.pk}"
    server = start_gunicorn(port, database)
    try:
        for _ in range(120):
            try:
                get(port, hand, "")  # any answer: the server is up
                break
            except OSError:
                time.sleep(0.5)
        token = login(port, "bench", "bench-pass-123")
        status_api, body_api = get(port, api, token)
        status_hand, body_hand = get(port, hand, token)
        assert status_api == 200, (status_api, body_api[:300])
        a, h = json.loads(body_api), json.loads(body_hand)
        if a != h:
            diff = sorted(k for k in set(a) | set(h) if a.get(k) != h.get(k))
            raise SystemExit(f"bench_detail: the anchor's JSON differs from the API's in {diff}")
        assert get(port, api, "wrong-token")[0] == 401
        assert get(port, hand, "wrong-token")[0] in (401, 403)
        print(
            f"GET /loans/{{id}}?associations=all, 360 periods + 1,000 transactions "
            f"({len(body_api):,} bytes), gunicorn {WORKERS} workers, {CLIENTS} clients, "
            f"{ROUNDS} rounds of {PER_ROUND} requests each ({load_line()}):"
        )
        started_rss = worker_rss_mib(server.pid)
        burst(port, api, token, PER_ROUND)  # warm-up
        burst(port, hand, token, PER_ROUND)
        sent = PER_ROUND + 2
        api_s, hand_s = Samples("API"), Samples("hand-written")
        for r in range(ROUNDS):
            order = [(api, api_s), (hand, hand_s)]
            for path, samples in order if r % 2 == 0 else order[::-1]:
                samples.seconds.append(burst(port, path, token, PER_ROUND) / PER_ROUND)
            sent += PER_ROUND
        if sent < RSS_AFTER:
            burst(port, api, token, RSS_AFTER - sent)
        rss = worker_rss_mib(server.pid)
        for samples in (api_s, hand_s):
            samples.label = f"{samples.label}: {1 / samples.median:.1f} req/s, per request"
        print_figure(hand_s)
        print_figure(api_s)
        ratios = sorted(h / a for a, h in zip(api_s.seconds, hand_s.seconds, strict=True))
        print(
            f"      throughput API / hand-written: {ratios[len(ratios) // 2]:.2f}x "
            f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}); goal >= 0.8x"
        )
        print(
            f"  worker RSS after {max(RSS_AFTER, sent):,} API requests: "
            f"{', '.join(f'{m:.1f}' for m in rss)} MiB (after one request each: "
            f"{', '.join(f'{m:.1f}' for m in started_rss)}); goal <= 100 MiB"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    with throwaway_database() as connection:
        run(connection)
