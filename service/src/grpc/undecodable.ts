// A request message the server cannot decode (wrong wire types, truncated fields)
// becomes a marker object instead of an exception inside grpc-js. The handlers
// then answer it like any other bad input: a unary call with State 400, a report
// with its own in-order 400 answer, a credit by ending the stream INVALID_ARGUMENT.
// (grpc-js would end the call with INTERNAL, and on a stream with answers still in
// flight that status can be lost, leaving the stream hanging.)
import type * as grpc from "@grpc/grpc-js";

const UNDECODABLE = Symbol("undecodable request");

export interface Undecodable {
  [UNDECODABLE]: string;
}

export function isUndecodable(request: unknown): request is Undecodable {
  return typeof request === "object" && request !== null && UNDECODABLE in request;
}

/** Why the message could not be decoded, for the answer's Message. */
export function undecodableReason(request: Undecodable): string {
  return request[UNDECODABLE];
}

/** The service definition with deserializers that return a marker instead of throwing. */
export function withSafeDeserializers(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (error) {
            return { [UNDECODABLE]: ((error as Error).message || "malformed protobuf").slice(0, 200) };
          }
        },
      },
    ]),
  ) as grpc.ServiceDefinition;
}
