#!/usr/bin/env bash
# Build the Airbyte image of source-sentry with the Docker engine that `docker` reaches
# (DOCKER_HOST if set). Usage: scripts/build_image.sh [IMAGE]   (default source-sentry/source-sentry:dev)
#
# The Dockerfile is FROM ${BASE_IMAGE}, python:3.11-slim by default. Where that base can be had
# (already present, or pulled from its registry) it is used. Where no image registry is reachable,
# a stand-in with the same role is made from Debian's packages (python3.11 with pip; the recipe is
# stand_in_base below) and the same Dockerfile is built on it. BASE_IMAGE=NAME forces a base.
# The image is tagged IMAGE and <repository>:<version> (metadata.yaml's dockerImageTag).
# Prints the base used, the build's wall time and the image size.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${1:-source-sentry/source-sentry:dev}"
REAL_BASE=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)
REPOSITORY=$(sed -n 's/^  dockerRepository: *//p' metadata.yaml)
VERSION=$(sed -n 's/^  dockerImageTag: *//p' metadata.yaml)
STAND_IN=source-sentry-base/python:3.11-bookworm
# The system CA bundle: TLS from inside the build is checked against it (a proxy's CA included).
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

log() { echo "build_image: $*" >&2; }

# The stand-in for python:3.11-slim: Debian bookworm's minbase with python3.11, venv and pip,
# pip allowed to install system-wide (as in the python image, whose pip owns /usr/local), `python`
# on PATH, and this machine's CA bundle as the system bundle (Debian's pip and Python use it).
# Needs root and mmdebstrap (apt-get install mmdebstrap); about 30 s. Rebuilt when the recipe or
# the CA bundle changes (the label source-sentry.recipe holds their hash).
stand_in_base() {
  local recipe hash tar
  recipe="bookworm minbase python3.11,python3.11-venv,python3-pip,ca-certificates; no EXTERNALLY-MANAGED; python -> python3; LANG=C.UTF-8"
  hash=$( { echo "$recipe"; cat "$CA_BUNDLE"; } | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "source-sentry.recipe"}}' "$STAND_IN" 2>/dev/null)" = "$hash" ]; then
    log "stand-in base $STAND_IN is up to date"
    return
  fi
  command -v mmdebstrap > /dev/null || { log "mmdebstrap is needed for the stand-in base: apt-get install -y mmdebstrap"; exit 1; }
  [ -r "$CA_BUNDLE" ] || { log "no CA bundle at $CA_BUNDLE"; exit 1; }
  tar=$(mktemp --suffix=.tar)
  trap 'rm -f "$tar"' RETURN
  log "making the stand-in base $STAND_IN with mmdebstrap"
  mmdebstrap --quiet --variant=minbase \
    --include=python3.11,python3.11-venv,python3-pip,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="upload $CA_BUNDLE /etc/ssl/certs/ca-certificates.crt" \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    --customize-hook='ln -sf python3 "$1"/usr/bin/python' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$tar"
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL source-sentry.recipe=$hash" \
    --change 'CMD ["python3"]' \
    "$tar" "$STAND_IN" > /dev/null
}

base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  if docker image inspect "$REAL_BASE" > /dev/null 2>&1; then
    base="$REAL_BASE"
  elif timeout "${PULL_TIMEOUT:-60}" docker pull --quiet "$REAL_BASE" > /dev/null 2>&1; then
    base="$REAL_BASE"
  else
    log "$REAL_BASE cannot be pulled here: building on a stand-in made from Debian's packages"
    stand_in_base
    base="$STAND_IN"
  fi
fi

log "building $IMAGE from $base"
started=$SECONDS
# --network host: the engine may have no bridge network (dockerd --bridge=none); pip reaches PyPI
# the way the host does.
docker build --network host --build-arg BASE_IMAGE="$base" \
  -t "$IMAGE" -t "$REPOSITORY:$VERSION" . >&2
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "built $IMAGE and $REPOSITORY:$VERSION from $base in $((SECONDS - started)) s; image size $((size / 1000000)) MB"
