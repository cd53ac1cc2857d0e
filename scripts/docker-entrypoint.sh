#!/bin/sh
# The image's entrypoint (under tini). Fly mounts a volume root-owned: as root, make the
# cache folders on it and give them to the unprivileged `node` user, then run the command
# as `node` (exec: tini's child becomes the gateway itself, which gets the signals).
# Started as any other user, it only runs the command.
set -eu
if [ "$(id -u)" = 0 ]; then
  # The volume's root too, for files an admin puts there (--audit-file /data/audit.jsonl).
  [ -d /data ] && chown node:node /data
  for dir in "${npm_config_cache:-/data/npm-cache}" "${UV_CACHE_DIR:-/data/uv-cache}" "${UV_PYTHON_INSTALL_DIR:-/data/uv-python}"; do
    mkdir -p "$dir"
    chown node:node "$dir"
  done
  # setpriv changes the user, not the environment: HOME is the one the servers get.
  export HOME=/home/node USER=node LOGNAME=node
  exec setpriv --reuid=node --regid=node --init-groups -- "$@"
fi
exec "$@"
