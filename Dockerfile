# syntax=docker/dockerfile:1
#
# One image for every kortflyt process. docker-compose.yml picks the process with
# `command:` (python -m services.intake | services.registry_check | services.production |
# services.notify | services.support | services.verify | services.support.web | shared.topics).
#
# Stages:
#   builder  - uv resolves nothing: it installs exactly what uv.lock pins into /app/.venv
#   base     - python:3.11-slim + the venv + the source, non-root user
#   dev      - base + devtools/ (the fakes of the compose `dev` profile); never used in operations
#   runtime  - the operations image (the last stage, so a plain `docker build .` gives it)

ARG PYTHON_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install uv==0.13.9

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself (hatchling needs README.md, named as the readme in pyproject.toml).
COPY README.md ./
COPY shared/ ./shared/
COPY services/ ./services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
 && python -m compileall -q shared services

# --------------------------------------------------------------------------- base
FROM ${PYTHON_IMAGE} AS base

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH

# A fixed uid/gid so volume ownership is predictable. The data directories exist in the
# image and belong to that user, so a new named volume mounted on them starts with the
# same owner and the non-root process can write to it.
RUN groupadd --system --gid 10001 kortflyt \
 && useradd --system --uid 10001 --gid kortflyt --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin kortflyt \
 && install -d -o kortflyt -g kortflyt -m 0750 \
        /var/lib/kortflyt/blobs /var/lib/kortflyt/uploads /var/lib/kortflyt/spool \
        /var/lib/kortflyt/keys /var/lib/kortflyt/command-keys /var/lib/kortflyt/command-public

WORKDIR /app

# The venv holds an editable install of the project that points at /app, so the source
# goes to the same path as in the builder. Both stay owned by root: read-only to the app.
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/shared /app/shared
COPY --from=builder /app/services /app/services

USER kortflyt:kortflyt

CMD ["python", "-m", "services.intake"]

# --------------------------------------------------------------------------- dev
# Adds the development fakes (devtools/fakes/: registers, document store, mail sink) and the
# dev dependencies they run on (aiohttp, aiosmtpd) for `docker compose --profile dev up`.
FROM builder AS dev-builder
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen

FROM base AS dev
COPY --from=dev-builder /app/.venv /app/.venv
COPY devtools/ /app/devtools/

# --------------------------------------------------------------------------- runtime
FROM base AS runtime
