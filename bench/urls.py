"""The project's URLs plus ``/bench/hand/<id>``: the anchor of ``bench_detail``."""

from django.urls import path

from bench.hand import hand_detail
from servicing.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("bench/hand/<int:loan_id>", hand_detail), *project_urlpatterns]
