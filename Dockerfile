# The Queues gRPC server. Built by the CDK app for ARM64 (Graviton) Fargate tasks:
#   npx cdk deploy   (or: docker build --platform linux/arm64 -t queues .)
# Two stages: the build stage compiles the protocol and server packages with the dev
# dependencies; the runtime stage has only the server's production dependencies, the
# compiled packages and the proto, and runs as the unprivileged "node" user.

# The build stage runs on the builder's own CPU (no emulation): its output, JavaScript, is the same on any.
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY proto/package.json proto/tsconfig.json ./proto/
COPY client/package.json ./client/
COPY cli/package.json ./cli/
COPY service/package.json service/tsconfig.json ./service/
COPY infra/package.json ./infra/
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY proto/standard.proto ./proto/
COPY proto/src ./proto/src
COPY service/src ./service/src
RUN npm run generate && npx tsc -b proto service

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY proto/package.json ./proto/
COPY client/package.json ./client/
COPY cli/package.json ./cli/
COPY service/package.json ./service/
COPY infra/package.json ./infra/
RUN npm ci --omit=dev --workspace @queues/server --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/proto/dist ./proto/dist
COPY proto/standard.proto ./proto/
COPY --from=build /app/service/dist ./service/dist
USER node
# gRPC, and GET /healthz for the load balancer (QUEUES_HEALTH_HTTP_PORT).
EXPOSE 50051 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "service/dist/health/check.js"]
CMD ["node", "service/dist/main.js"]
