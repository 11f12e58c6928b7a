// Loads proto/standard.proto at run time (the generated TypeScript types describe
// the same file). keepCase keeps the seed's PascalCase field names; longs: String
// keeps every uint64 out of JS numbers.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadSync, type Options, type PackageDefinition } from "@grpc/proto-loader";
import * as grpc from "@grpc/grpc-js";
import type { ProtoGrpcType } from "../generated/standard.js";

export const PROTO_LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** proto/standard.proto, found from this file whether it runs from service/ (tsx, vitest) or dist/service/. */
export function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "proto", "standard.proto");
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error("proto/standard.proto not found above " + fileURLToPath(import.meta.url));
}

export function loadQueuesPackage(): { definition: PackageDefinition; proto: ProtoGrpcType } {
  const definition = loadSync(protoPath(), PROTO_LOADER_OPTIONS);
  return { definition, proto: grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType };
}
