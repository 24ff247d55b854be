# The Airbyte image of source-sentry: `scripts/build_image.sh` (or `docker build -t source-sentry/source-sentry:dev .`).
# Airbyte runs it as `source-sentry spec|check|discover|read ...` (ENTRYPOINT below).
# tests/packaging/test_docker_metadata.py checks this file against pyproject.toml and metadata.yaml;
# tests/image/ builds and runs it.
# BASE_IMAGE is python:3.11-slim; only where no image registry is reachable does
# scripts/build_image.sh pass a stand-in made from Debian's python3.11 (same role: python3.11 with pip).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

LABEL io.airbyte.name=source-sentry/source-sentry
LABEL io.airbyte.version=0.3.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /airbyte/integration_code
COPY pyproject.toml README.md ./
COPY source_sentry ./source_sentry
COPY sentry_emulator ./sentry_emulator
# Install the package and its dependencies, then drop the sources: the image runs the wheel.
RUN pip install . \
    && rm -rf /airbyte/integration_code/* \
    && useradd --uid 1000 --create-home --shell /usr/sbin/nologin airbyte

USER airbyte
ENV AIRBYTE_ENTRYPOINT="source-sentry"
ENTRYPOINT ["source-sentry"]
