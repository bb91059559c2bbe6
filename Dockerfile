# The engine's image: the `loyalty` command with every dependency. docker-compose.yml runs it
# as migrate, worker, relay, wallet-sync, webhooks and admin; it finds its services through
# LOYALTY_DATABASE_URL and LOYALTY_KAFKA_BOOTSTRAP, never through a local stack. No curl: the
# compose healthchecks ask /readyz with python's urllib.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_SYSTEM_PYTHON=1 \
    UV_NO_CACHE=1 \
    LOYALTY_ADMIN_HOST=0.0.0.0 \
    LOYALTY_LOG_JSON=true

RUN pip install --no-cache-dir uv \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin loyalty

WORKDIR /app

# Dependencies first, from pyproject.toml alone: a change of the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN uv pip install -r pyproject.toml

COPY . .
# Editable, so that what lives beside the packages (alembic.ini, migrations/) is found where
# core.settings.REPO_ROOT points: /app. The folder itself is the app user's, for the admin
# UI's storage; the code stays read-only to it.
RUN uv pip install --no-deps -e . && chown loyalty /app

USER loyalty
ENTRYPOINT ["loyalty"]
CMD ["--help"]
