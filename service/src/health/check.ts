// The container health check: asks the server's own grpc.health.v1.Health service
// whether it is SERVING, and exits 0 if so, 1 otherwise. The Dockerfile's HEALTHCHECK
// and the ECS container health check run `node dist/service/health/check.js`, which
// asks for "liveness" (see backend-health.ts); pass a service name to ask for another.
//
//   node dist/service/health/check.js [host:port] [service]
//     (default 127.0.0.1:$PORT, PORT defaults to 50051; service "liveness"; "" is readiness)
import { pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { LIVENESS_SERVICE_NAME } from "./backend-health.js";

const DEADLINE_MS = 3_000;

export function checkServing(address: string, service = ""): Promise<string> {
  const definition = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const proto = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & HealthClient } } };
  };
  const client = new proto.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.Check({ service }, { deadline: Date.now() + DEADLINE_MS }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response?.status ?? "UNKNOWN");
    });
  });
}

interface HealthClient {
  Check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
  ): void;
}

async function main(): Promise<void> {
  const address = process.argv[2] || `127.0.0.1:${process.env.PORT || "50051"}`;
  const service = process.argv[3] ?? LIVENESS_SERVICE_NAME;
  try {
    const status = await checkServing(address, service);
    console.log(`${address} ${JSON.stringify(service)}: ${status}`);
    process.exit(status === "SERVING" ? 0 : 1);
  } catch (error) {
    console.log(`${address}: ${(error as Error).message}`);
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
