"""The floor of this stack: a Django view that does exactly one INSERT.

Served by gunicorn with ``bench.floor_settings`` next to the real product, so the gap
between the two is what the webhook's own work costs. ``bench/intake.py`` creates the
``bench_floor`` table in its own database, dropped after the run.
"""

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def floor_insert(request):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor (body) VALUES (%s) RETURNING id", [request.body.decode()])
        (row_id,) = cursor.fetchone()
    return JsonResponse({"id": row_id}, status=201)


urlpatterns = [path("floor", floor_insert)]
