// Response State codes (SPEC §2): HTTP-style numbers carried in every unary response
// and in each ReportTaskResultResponse.

export const Status = {
  OK: 200,
  INVALID: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/**
 * An answer other than 200 that the caller can act on. Thrown by the rules and the
 * task service, turned into a response by the gRPC layer. `data` carries the extra
 * payload some answers have (the existing HashCode on a duplicate create, the final
 * task on a cancel conflict).
 */
export class Rejection<TData = unknown> extends Error {
  constructor(
    readonly status: StatusCode,
    message: string,
    readonly data?: TData,
  ) {
    super(message);
    this.name = "Rejection";
  }
}

export const invalid = (message: string) => new Rejection(Status.INVALID, message);
export const notFound = (message: string) => new Rejection(Status.NOT_FOUND, message);
export const conflict = <T>(message: string, data?: T) => new Rejection(Status.CONFLICT, message, data);
