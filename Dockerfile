# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# uv stage: `uv` and `uvx` (for whitelist entries such as `uvx mcp-server-time`), from the
# official release tarball of one pinned version, checked against its published sha256
# (the `uv-<target>.tar.gz.sha256` asset of that release). Changing the version means
# changing the checksums with it; a mismatch fails the build.
FROM node:22-slim AS uv
ARG TARGETARCH
ENV UV_VERSION=0.11.12
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    case "${TARGETARCH:-amd64}" in \
      amd64) target=x86_64-unknown-linux-gnu; sha256=9acdecddacba550ee616c02bb4616d894352022550c5977524556fd5077ce1d4 ;; \
      arm64) target=aarch64-unknown-linux-gnu; sha256=d6e3e5183e71bbd40400da3d2913743cefb98835d8312a5e7908c33865597515 ;; \
      *) echo "no pinned uv checksum for ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    curl -fsSL -o /tmp/uv.tar.gz "https://github.com/astral-sh/uv/releases/download/${UV_VERSION}/uv-${target}.tar.gz"; \
    echo "${sha256}  /tmp/uv.tar.gz" | sha256sum -c -; \
    tar -xzf /tmp/uv.tar.gz -C /tmp; \
    install -m 0755 "/tmp/uv-${target}/uv" "/tmp/uv-${target}/uvx" /usr/local/bin/; \
    /usr/local/bin/uv --version

# Runtime stage: production dependencies only, an init that reaps orphans.
FROM node:22-slim
# tini: PID 1 that forwards signals and reaps re-parented grandchildren.
# procps: `ps`, which the tree walk uses to find a child's descendants.
# python3: a Python for `uvx` servers, so uv need not download one (it still does, onto the
# volume, for a server that needs a newer Python than Debian's).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini procps ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /usr/local/bin/uv /usr/local/bin/uvx /usr/local/bin/
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    WARDEN_COMMANDS=/app/allowed-commands.json
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
# The caches of `npx` and `uvx` (and the Python uv installs) live on the volume mounted at
# /data (fly.toml), so a restart does not download every server again. A server's
# environment is built from scratch, so these reach it only through its whitelist entry's
# `env`, set by the admin (examples/allowed-commands.fly.json); clients cannot set
# NPM_CONFIG_* or UV_* (the ENV_* blocklist refuses them).
ENV npm_config_cache=/data/npm-cache \
    UV_CACHE_DIR=/data/uv-cache \
    UV_PYTHON_INSTALL_DIR=/data/uv-python
COPY --from=build /app/dist ./dist
COPY allowed-commands.json ./
COPY examples ./examples
COPY schema ./schema
COPY scripts/docker-entrypoint.sh /usr/local/bin/warden-entrypoint
RUN mkdir -p /data/npm-cache /data/uv-cache /data/uv-python && chown -R node:node /data
EXPOSE 8080
# The entrypoint starts as root only to hand the volume (root-owned when Fly mounts it) to
# the unprivileged `node` user, then runs the gateway as `node`.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/warden-entrypoint"]
CMD ["node", "dist/main.js"]
