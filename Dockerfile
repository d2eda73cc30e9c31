# syntax=docker/dockerfile:1
#
# Production image of the service: multi-stage, production dependencies only,
# no secrets, non-root, read-only root filesystem friendly (writes nothing
# outside /tmp). Build and run:
#
#   docker build -t secure-fastify-service:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   (with Podman or Buildah add --format docker: the OCI format drops HEALTHCHECK)
#   docker run --rm --read-only --tmpfs /tmp --cap-drop ALL \
#     --security-opt no-new-privileges -p 127.0.0.1:3000:3000 \
#     -e SECRET_KEY=... -e JWT_SECRET_KEY=... -e DATABASE_URL=... secure-fastify-service:0.1.0
#
# Without SECRET_KEY, JWT_SECRET_KEY and DATABASE_URL the container refuses to
# start (ENVIRONMENT=production is set below), listing every missing variable.
#
# Node.js 24 is an LTS line supported until 2028; the code also runs on 20 and 22.
# For reproducible builds pin the base by digest in CI, e.g.
#   --build-arg NODE_IMAGE=node:24-slim@sha256:<digest>
ARG NODE_IMAGE=node:24-slim

# --- build: all dependencies, TypeScript compiled to dist/ --------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency runs code at install time (supply chain); the
# compiler needs none, and @node-rs/argon2 installs a prebuilt binary package.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
# .dockerignore keeps .env, .data, node_modules, dist, tests and .git out.
COPY . .
RUN npx tsc -p tsconfig.build.json

# --- deps: production dependencies only ----------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime --------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# Declared before the first FROM; re-declared to use it in a label.
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# Set to the repository this image is built from.
ARG SOURCE=https://example.invalid/secure-fastify-service
LABEL org.opencontainers.image.title="secure-fastify-service" \
      org.opencontainers.image.description="Secure-by-default Fastify 5 microservice in TypeScript" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"

# The service never runs npm (the migration Job runs `node dist/scripts/migrate.js`),
# so the package managers leave the image: less code an intruder could use, fewer
# CVE reports about tools that never run.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg

# ENVIRONMENT=production makes a container started without secrets refuse to start.
# HOST=0.0.0.0: inside a container, 127.0.0.1 would be unreachable from outside.
ENV NODE_ENV=production \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=3000

WORKDIR /app
# Owned by root and not writable by the service user: the process cannot change its
# own code. migrations/ is read at run time, from beside dist/.
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY migrations ./migrations

# `node` (UID 1000 in the official images), given numerically so that Kubernetes'
# runAsNonRoot can verify it without reading /etc/passwd.
USER 1000:1000

EXPOSE 3000

# slim images have no curl: Node's own fetch probes liveness (never the database,
# so an outage does not get every container restarted).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Node runs as PID 1 directly, with no init process and no npm in between (npm
# would not forward SIGTERM). This is safe because server.ts installs its own
# SIGTERM/SIGINT handlers (close-with-grace) before it listens, so the kernel's
# "PID 1 ignores signals without a handler" rule does not apply, and the service
# never spawns child processes, so there are no zombies to reap. Add
# `docker run --init` (tini) if that ever changes.
# dist/server.js starts tracing (dist/telemetry.js) before it loads the rest of the
# service, so no `--import` flag is needed here; tracing stays off until
# OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md, "Tracing").
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
