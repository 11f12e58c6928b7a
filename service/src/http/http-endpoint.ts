// The server's HTTP port (QUEUES_HTTP_PORT). The liveness health status over plain
// HTTP, for load balancers that cannot speak the gRPC health protocol (an NLB's target
// health check is TCP or HTTP): GET /healthz
// answers 200 once the backends have answered and until the server drains, 503
// otherwise (see backend-health.ts for why liveness, not readiness). GET /usage
// answers the backend usage counters as JSON (see metrics/backend-usage.ts); with
// authentication on it needs an admin token (`authorization: Bearer`). GET
// /metrics answers the Prometheus metrics (metrics/task-metrics.ts).
// /usage/partitions is the partition-load counter (metrics/partition-load.ts, for
// `npm run bench`): POST starts a counting window (204), GET answers its counts,
// DELETE ends the window and frees them (204). Counting changes no data; it costs
// the server some CPU per DynamoDB call while a window is open (at most 15 minutes).
// Everything else the web console answers (console/console.ts): `/` and its pages.
import { createServer, type Server } from "node:http";
import type { BackendHealth } from "../health/backend-health.js";
import type { BackendUsage } from "../metrics/backend-usage.js";
import type { TaskMetrics } from "../metrics/task-metrics.js";
import type { Authorizer } from "../auth/authorizer.js";
import type { WebConsole } from "../console/console.js";

export const HEALTH_HTTP_PATH = "/healthz";
export const USAGE_HTTP_PATH = "/usage";
export const PARTITIONS_HTTP_PATH = "/usage/partitions";
export const METRICS_HTTP_PATH = "/metrics";

export class HttpEndpoint {
  private readonly server: Server;

  constructor(health: BackendHealth, usage?: BackendUsage, metrics?: TaskMetrics, authorizer?: Authorizer, webConsole?: WebConsole) {
    this.server = createServer((request, response) => {
      const pathname = (request.url ?? "/").split("?")[0] as string;
      if (webConsole?.serves(pathname)) {
        webConsole.handle(request, response).catch(() => response.destroy());
        return;
      }
      // With authentication on, /usage (and what comes under it) needs an admin token; /healthz and /metrics carry no task data.
      if (authorizer && request.url?.startsWith(USAGE_HTTP_PATH) && !authorizer.isAdmin(request.headers.authorization)) {
        request.resume();
        response.writeHead(401, { "www-authenticate": 'Bearer realm="queues"', "content-type": "text/plain" }).end("an admin token is required: authorization: Bearer <token>\n");
        return;
      }
      if (request.method === "GET" && request.url === METRICS_HTTP_PATH && metrics) {
        metrics.text().then(
          ({ contentType, body }) => response.writeHead(200, { "content-type": contentType }).end(body),
          () => response.writeHead(503, { "content-type": "text/plain" }).end("metrics unavailable (a backend did not answer)\n"),
        );
        return;
      }
      if (request.method === "GET" && request.url === USAGE_HTTP_PATH && usage) {
        response.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(usage.snapshot())}\n`);
        return;
      }
      if (request.url === PARTITIONS_HTTP_PATH && usage) {
        if (request.method === "GET") {
          response.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(usage.partitions.snapshot())}\n`);
        } else if (request.method === "POST" || request.method === "DELETE") {
          if (request.method === "POST") usage.partitions.start();
          else usage.partitions.reset();
          response.writeHead(204).end();
        } else {
          response.writeHead(405, { allow: "GET, POST, DELETE", "content-type": "text/plain" }).end("method not allowed\n");
        }
        request.resume();
        return;
      }
      if (request.method !== "GET" || request.url !== HEALTH_HTTP_PATH) {
        response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      const serving = health.live;
      response.writeHead(serving ? 200 : 503, { "content-type": "text/plain" }).end(serving ? "SERVING\n" : "NOT_SERVING\n");
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        const address = this.server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
