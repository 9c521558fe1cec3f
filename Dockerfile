# CSAI image: one image for web (gunicorn), Celery worker, Celery beat and migrations.
# docker-compose.yml picks the process per service; the default is the web server.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CSAI_VAR_DIR=/app/var

WORKDIR /app

RUN groupadd --system --gid 10001 csai \
 && useradd --system --uid 10001 --gid csai --home-dir /app --no-create-home csai

# Dependencies first (pinned in pyproject.toml) so code changes reuse this layer.
# The project installs no packages of its own: the code runs from /app.
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir . \
 && rm -rf build *.egg-info

COPY . .

# Settings need these to import; real values come from the environment at run time.
# Setting the URLs also keeps settings from starting embedded Postgres/Redis here.
RUN DATABASE_URL=postgresql://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=build \
    CSAI_WEBHOOK_SECRET=build \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var/beat \
 && chown csai:csai /app/var /app/var/beat

USER csai

EXPOSE 8000

CMD ["gunicorn", "csai.wsgi:application", "--bind", "0.0.0.0:8000"]
