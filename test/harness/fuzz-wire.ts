// Byte-level building blocks of the fuzz harness: a hand-written protobuf encoder
// (so it can write what protobufjs never would: wrong wire types, bad UTF-8,
// truncated varints, lengths past the end) and gRPC length-prefixed framing.

export const WireType = { VARINT: 0, FIXED64: 1, LEN: 2, START_GROUP: 3, END_GROUP: 4, FIXED32: 5, BAD6: 6, BAD7: 7 } as const;

export const MAX_UINT64 = (1n << 64n) - 1n;

/** Unsigned LEB128 of any non-negative bigint (values past 2^64 give overlong varints on purpose). */
export function varint(value: bigint): Buffer {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = Number(rest & 0x7fn);
    rest >>= 7n;
    if (rest > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0n);
  return Buffer.from(bytes);
}

export function tag(field: number, wireType: number): Buffer {
  return varint((BigInt(field) << 3n) | BigInt(wireType));
}

export function varintField(field: number, value: bigint): Buffer {
  return Buffer.concat([tag(field, WireType.VARINT), varint(value)]);
}

export function lenField(field: number, bytes: Buffer | string): Buffer {
  const body = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  return Buffer.concat([tag(field, WireType.LEN), varint(BigInt(body.length)), body]);
}

export function fixed32Field(field: number, value: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt32LE(value >>> 0);
  return Buffer.concat([tag(field, WireType.FIXED32), body]);
}

export function fixed64Field(field: number, value: bigint): Buffer {
  const body = Buffer.alloc(8);
  body.writeBigUInt64LE(value & MAX_UINT64);
  return Buffer.concat([tag(field, WireType.FIXED64), body]);
}

/**
 * One gRPC message frame: 1-byte compressed flag, 4-byte big-endian length, payload.
 * `declaredLength` may lie about the payload (the fuzzer sends frames that end early).
 */
export function grpcFrame(payload: Buffer, compressedFlag = 0, declaredLength = payload.length): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(compressedFlag & 0xff, 0);
  header.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([header, payload]);
}

export interface ParsedFrame {
  compressedFlag: number;
  payload: Buffer;
}

/**
 * Splits response bytes into gRPC frames as they arrive. A well-behaved server only
 * ever sends complete, uncompressed frames; anything else is reported by `leftover`.
 */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ParsedFrame[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: ParsedFrame[] = [];
    while (this.buffered.length >= 5) {
      const length = this.buffered.readUInt32BE(1);
      if (this.buffered.length < 5 + length) break;
      frames.push({ compressedFlag: this.buffered.readUInt8(0), payload: this.buffered.subarray(5, 5 + length) });
      this.buffered = this.buffered.subarray(5 + length);
    }
    return frames;
  }

  /** Bytes of an incomplete frame still buffered (0 once the response is complete). */
  get leftover(): number {
    return this.buffered.length;
  }
}

/** gRPC status code names, for breakdowns people can read. */
export const GRPC_CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? `CODE_${code}`;
}

/** A short printable form of bytes for examples in the report. */
export function hexPreview(bytes: Buffer, max = 48): string {
  const shown = bytes.subarray(0, max).toString("hex");
  return bytes.length > max ? `${shown}… (${bytes.length} bytes)` : shown;
}
