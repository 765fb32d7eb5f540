#!/bin/sh
# The official traefik image's contract, for the local image: flags alone mean `traefik <flags>`.
set -e
case "$1" in -*) set -- traefik "$@" ;; esac
exec "$@"
