// One ReceiveQueueByChannel stream that outlives connection drops: it keeps the
// credits the worker wants outstanding, and after a reconnect sends them again (a
// server forgets a stream's credits when the stream ends). Errors that a reconnect
// cannot fix (an unknown channel, no permission) are fatal.
import * as grpc from "@grpc/grpc-js";
import type { QueuesServiceClient as GeneratedQueuesClient, ReceiveQueueByChannelRequest, ReceiveQueueByChannelResponse__Output, Task__Output } from "@queues/protocol";
import { Backoff, type CompiledBackoffOptions } from "./backoff.js";

type ReceiveCall = grpc.ClientDuplexStream<ReceiveQueueByChannelRequest, ReceiveQueueByChannelResponse__Output>;

/** Statuses a new stream would only get again. */
const FATAL = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNIMPLEMENTED,
  // More credits than the server allows one stream (QUEUES_MAX_CREDITS_PER_STREAM): lower the concurrency.
  grpc.status.RESOURCE_EXHAUSTED,
]);

export interface CreditStreamHooks {
  onTask: (task: Task__Output) => void;
  /** The stream cannot work (e.g. an unknown channel); it is not reopened. */
  onFatal: (error: grpc.ServiceError) => void;
  onReconnect?: (delayMs: number, error: unknown) => void;
}

export class CreditStream {
  private call: ReceiveCall | undefined;
  /** Credits sent on the current stream and not answered yet. */
  private outstanding = 0;
  /** Credits the worker wants outstanding (its free handler slots). */
  private wanted = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private stopped = false;

  constructor(
    private readonly client: GeneratedQueuesClient,
    private readonly channel: string,
    private readonly metadata: grpc.Metadata,
    private readonly hooks: CreditStreamHooks,
    backoff: CompiledBackoffOptions,
  ) {
    this.backoff = new Backoff(backoff);
  }

  /** Asks for `count` more tasks. */
  request(count: number): void {
    if (this.stopped || count <= 0) return;
    this.wanted += count;
    this.topUp();
  }

  /** Stops asking: cancels the stream, so the server releases whatever it had not handed over yet. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
  }

  private topUp(): void {
    if (this.stopped) return;
    if (!this.call) {
      if (!this.reconnectTimer) this.open();
      return;
    }
    while (this.outstanding < this.wanted) {
      this.outstanding += 1;
      this.call.write({ Channel: this.channel });
    }
  }

  private open(): void {
    const call = this.client.ReceiveQueueByChannel(this.metadata);
    this.call = call;
    this.outstanding = 0;
    call.on("data", (response: ReceiveQueueByChannelResponse__Output) => {
      if (!response.Tasks) return;
      if (call === this.call) {
        this.backoff.reset();
        this.outstanding -= 1;
        this.wanted -= 1;
      }
      // Also a task the server wrote just before it saw stop()'s cancel: it is leased to us,
      // and dropping it would cost it an attempt when its lease ran out.
      this.hooks.onTask(response.Tasks);
    });
    const broken = (error: unknown) => {
      if (call !== this.call) return;
      this.call = undefined;
      if (this.stopped) return;
      const code = (error as grpc.ServiceError | undefined)?.code;
      if (code !== undefined && FATAL.has(code)) {
        this.stopped = true;
        this.hooks.onFatal(error as grpc.ServiceError);
        return;
      }
      const delayMs = this.backoff.next();
      this.hooks.onReconnect?.(delayMs, error);
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        this.topUp();
      }, delayMs);
    };
    call.on("error", broken);
    call.on("end", () => broken(new Error("the server ended the receive stream")));
    this.topUp();
  }
}
