#!/bin/sh
# The official redis image's start-up contract, for the local image: leading flags or a .conf
# file mean redis-server; redis-server started as root drops to the `redis` user and owns /data.
set -eu
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
umask 0077
exec "$@"
