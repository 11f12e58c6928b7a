// Loads standard.proto at run time (the generated types describe the same file).
// keepCase keeps the seed's PascalCase field names; longs: String keeps every uint64
// out of JS numbers. The file is found relative to this package (src/ or dist/ sit
// beside standard.proto), wherever the package is installed.
import { fileURLToPath } from "node:url";
import { loadSync, type Options, type PackageDefinition } from "@grpc/proto-loader";
import * as grpc from "@grpc/grpc-js";
import type { ProtoGrpcType } from "./generated/standard.js";

export const PROTO_LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** The path of standard.proto in this package. */
export const PROTO_PATH = fileURLToPath(new URL("../standard.proto", import.meta.url));

export interface QueuesPackage {
  definition: PackageDefinition;
  proto: ProtoGrpcType;
}

let loaded: QueuesPackage | undefined;

/** The `standard` package, loaded once per process. */
export function loadQueuesPackage(): QueuesPackage {
  if (!loaded) {
    const definition = loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);
    loaded = { definition, proto: grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType };
  }
  return loaded;
}
