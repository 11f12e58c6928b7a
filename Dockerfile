# The Queues gRPC server. Built by the CDK app for ARM64 (Graviton) Fargate tasks:
#   npx cdk deploy   (or: docker build --platform linux/arm64 -t queues .)
# Two stages: the build stage compiles TypeScript with the dev dependencies; the
# runtime stage has only the production dependencies, the compiled server and the
# proto, and runs as the unprivileged "node" user.

# The build stage runs on the builder's own CPU (no emulation): its output, JavaScript, is the same on any.
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY service ./service
RUN npm run build

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY proto ./proto
USER node
# gRPC, and GET /healthz for the load balancer (QUEUES_HEALTH_HTTP_PORT).
EXPOSE 50051 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "dist/service/health/check.js"]
CMD ["node", "dist/service/main.js"]
