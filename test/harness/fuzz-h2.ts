// gRPC calls made by hand over node:http2, so the fuzzer controls every byte of the
// request (frames, flags, lengths, when to reset) and sees every byte of the answer.
import * as http2 from "node:http2";
import { FrameReader, type ParsedFrame } from "./fuzz-wire.js";

const { NGHTTP2_CANCEL } = http2.constants;

/** Everything a call's answer was made of; judged by the caller. */
export interface CallOutcome {
  httpStatus: number | undefined;
  /** grpc-status from the trailers (or a trailers-only answer); undefined if none came. */
  grpcStatus: number | undefined;
  grpcMessage: string;
  frames: ParsedFrame[];
  /** Bytes of an incomplete frame at the end of the answer. */
  leftoverBytes: number;
  /** The RST_STREAM code when the stream was reset (0 = closed normally). */
  rstCode: number;
  /** A stream or session error seen before the status. */
  transportError: string | undefined;
  /** The call was cancelled by us (abandon, hold time over, or no answer in time). */
  cancelledByUs: boolean;
  timedOut: boolean;
}

export interface CallOptions {
  /** Extra request headers (e.g. grpc-encoding, a wrong content-type). */
  headers?: http2.OutgoingHttpHeaders;
  /** No status within this time: cancel, mark timedOut. */
  timeoutMs: number;
  /**
   * Count timeoutMs from the last answer frame instead of from the start: a stream
   * still answering (slowly, on a loaded machine) is not hung; one silent that long is.
   */
  idle?: boolean;
  /** Called for each complete response frame as it arrives (streams). */
  onFrame?: (frame: ParsedFrame) => void;
}

/** One raw gRPC call on an HTTP/2 session. */
export class RawCall {
  readonly done: Promise<CallOutcome>;
  private readonly stream: http2.ClientHttp2Stream;
  private pendingWrites = 0;
  private readonly outcome: CallOutcome = {
    httpStatus: undefined,
    grpcStatus: undefined,
    grpcMessage: "",
    frames: [],
    leftoverBytes: 0,
    rstCode: 0,
    transportError: undefined,
    cancelledByUs: false,
    timedOut: false,
  };

  constructor(session: http2.ClientHttp2Session, path: string, options: CallOptions) {
    const reader = new FrameReader();
    this.stream = session.request(
      {
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...options.headers,
      },
      { endStream: false },
    );
    this.stream.on("response", (headers) => {
      this.outcome.httpStatus = Number(headers[":status"]);
      this.takeStatus(headers); // a trailers-only answer carries grpc-status here
    });
    this.stream.on("trailers", (trailers) => this.takeStatus(trailers));
    let timer: NodeJS.Timeout | undefined;
    this.stream.on("data", (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) {
        this.outcome.frames.push(frame);
        options.onFrame?.(frame);
        if (options.idle) timer?.refresh();
      }
    });
    // The server ended its side (trailers came): the call is over, so end ours too. With
    // END_STREAM, not RST_STREAM: nghttp2 answers a client's stream of resets with GOAWAY
    // (the rapid-reset mitigation), which would cut the connection's other calls.
    this.stream.on("end", () => {
      if (this.stream.closed || this.stream.destroyed) return;
      // Bytes still unsent (the server stopped reading them): only a reset can end the stream now.
      if (this.pendingWrites > 0) this.stream.close(NGHTTP2_CANCEL);
      else if (!this.stream.writableEnded) this.stream.end();
    });
    // Errors are facts to judge, never exceptions: an 'error' listener must exist or Node throws.
    this.stream.on("error", (error: Error) => {
      this.outcome.transportError ??= error.message;
    });
    this.done = new Promise<CallOutcome>((resolve) => {
      timer = setTimeout(() => {
        this.outcome.timedOut = true;
        this.cancel();
      }, options.timeoutMs);
      this.stream.on("close", () => {
        clearTimeout(timer);
        this.outcome.rstCode = this.stream.rstCode ?? 0;
        this.outcome.leftoverBytes = reader.leftover;
        resolve(this.outcome);
      });
    });
  }

  private takeStatus(headers: http2.IncomingHttpHeaders): void {
    const status = headers["grpc-status"];
    if (status === undefined) return;
    this.outcome.grpcStatus = Number(status);
    const message = headers["grpc-message"];
    this.outcome.grpcMessage = typeof message === "string" ? safeDecodeURIComponent(message) : "";
  }

  /** Writes bytes; resolves when they are handed to the session, or the stream is gone (a server that stops reading must not stall us). */
  write(bytes: Buffer): Promise<void> {
    if (this.stream.destroyed || this.stream.writableEnded) return Promise.resolve();
    this.pendingWrites += 1;
    const written = new Promise<void>((resolve) => {
      this.stream.write(bytes, () => {
        this.pendingWrites -= 1;
        resolve();
      });
    });
    return Promise.race([written, this.done.then(() => undefined)]);
  }

  /** Half-close: the request is complete. */
  end(): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  /** RST_STREAM(CANCEL): what a client does when it gives up on a call. */
  cancel(): void {
    this.outcome.cancelledByUs = true;
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  get hasStatus(): boolean {
    return this.outcome.grpcStatus !== undefined;
  }
}

function safeDecodeURIComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Opens an HTTP/2 session that never throws: errors just close it. */
export function openSession(address: string): http2.ClientHttp2Session {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => session.destroy());
  session.on("goaway", () => session.close());
  // Pooled sessions must not keep the process alive after the run.
  session.unref();
  return session;
}

/**
 * A few long-lived sessions shared by well-formed calls (as a real client would),
 * replaced when one closes. Calls that may upset a connection use `fresh()` or the
 * separate dirty pool, so a clean call never fails because of a neighbour.
 */
export class SessionPool {
  private readonly sessions: (http2.ClientHttp2Session | undefined)[];
  private readonly uses: number[];
  private next = 0;

  /**
   * `maxUses`: streams per session before it is replaced (closed gracefully: its calls
   * finish). A pool whose calls we reset keeps each session under nghttp2's rapid-reset
   * budget (1000 RST_STREAMs, then GOAWAY), which protects the server and is not what
   * the fuzzer is testing.
   */
  constructor(
    private readonly address: () => string,
    size: number,
    private readonly maxUses = Number.POSITIVE_INFINITY,
  ) {
    this.sessions = new Array(size).fill(undefined);
    this.uses = new Array(size).fill(0);
  }

  get(): http2.ClientHttp2Session {
    const index = this.next++ % this.sessions.length;
    let session = this.sessions[index];
    if (session && (this.uses[index] as number) >= this.maxUses) {
      session.close();
      session = undefined;
    }
    if (!session || session.closed || session.destroyed) {
      session = openSession(this.address());
      this.sessions[index] = session;
      this.uses[index] = 0;
    }
    this.uses[index] = (this.uses[index] as number) + 1;
    return session;
  }

  /** Drops every session: at once (the end), or gracefully, letting their calls finish. */
  closeAll(graceful = false): void {
    for (const session of this.sessions.splice(0, this.sessions.length, ...new Array(this.sessions.length).fill(undefined))) {
      if (graceful) session?.close();
      else session?.destroy();
    }
  }
}
