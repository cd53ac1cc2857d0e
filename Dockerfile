# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies only, an init that reaps orphans, non-root.
FROM node:22-slim
# tini: PID 1 that forwards signals and reaps re-parented grandchildren.
# procps: `ps`, which the tree walk uses to find a child's descendants.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini procps ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    WARDEN_COMMANDS=/app/allowed-commands.json
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY allowed-commands.json ./
COPY schema ./schema
USER node
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
