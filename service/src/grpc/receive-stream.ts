// ReceiveQueueByChannel: each request is one credit ("send me one task of
// Channel"), each credit is answered by exactly one task. The credits wait in the
// channel's shared poller; this stream is the Consumer the poller hands tasks to.
// A worker token scoped to channels may send credits for those channels only: a
// credit for another ends the stream with PERMISSION_DENIED (before the channel is
// even looked up, so the refusal does not list the configured channels).
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { ReceiveQueueByChannelRequest__Output, ReceiveQueueByChannelResponse } from "@queues/protocol";
import type { ChannelRegistry } from "../queue/channel-registry.js";
import type { ChannelPoller, Consumer } from "../queue/channel-poller.js";
import { channelInScope, type TaskScope } from "../tasks/scope.js";
import { Rejection } from "../tasks/status.js";
import type { TaskRecord } from "../tasks/task.js";
import { streamRpc } from "./rpc.js";
import { SHUTTING_DOWN, type StreamRegistry } from "./stream-registry.js";
import { toDeliveredWireTask } from "./wire.js";
import { isUndecodable, undecodableReason } from "./undecodable.js";

type ReceiveCall = grpc.ServerDuplexStream<ReceiveQueueByChannelRequest__Output, ReceiveQueueByChannelResponse>;

export function receiveHandler(channels: ChannelRegistry, streams: StreamRegistry, maxCredits: number) {
  return streamRpc<ReceiveQueueByChannelRequest__Output, ReceiveQueueByChannelResponse>((call, context) => {
    const stream = new WorkerStream(call, maxCredits, context.log, context.taskScope);
    streams.add(stream);
    call.on("data", (request: ReceiveQueueByChannelRequest__Output) => {
      if (isUndecodable(request)) stream.end(grpc.status.INVALID_ARGUMENT, `A credit is not a valid ReceiveQueueByChannelRequest message (${undecodableReason(request)})`);
      else stream.credit(channels, request.Channel);
    });
    // Half-close means "no more credits", not "stop": the credits already sent are still answered.
    call.on("end", () => stream.noMoreCredits());
    call.on("cancelled", () => stream.close());
    call.on("close", () => stream.close());
    call.on("error", () => stream.close());
    stream.onClose = () => streams.remove(stream);
  });
}

class WorkerStream implements Consumer {
  private closed = false;
  private halfClosed = false;
  private outstanding = 0;
  private delivered = 0;
  private readonly pollers = new Set<ChannelPoller>();
  onClose: (() => void) | undefined;

  constructor(
    private readonly call: ReceiveCall,
    private readonly maxCredits: number,
    private readonly log: Logger,
    private readonly scope: TaskScope | undefined,
  ) {
    this.log.info("worker stream opened");
  }

  get open(): boolean {
    return !this.closed && !this.call.cancelled && !this.call.destroyed;
  }

  credit(channels: ChannelRegistry, channel: string): void {
    if (!this.open) return;
    if (!channelInScope(this.scope, channel)) {
      // Only a configured channel's name is repeated: the refusal is logged, and a credit's text could be anything.
      const named = channels.names.has(channel) ? `channel "${channel}"` : "a channel that is not configured";
      this.end(grpc.status.PERMISSION_DENIED, `This token is scoped to other channels: it may not receive on ${named}`);
      return;
    }
    let poller: ChannelPoller;
    try {
      poller = channels.poller(channel);
    } catch (error) {
      const details = error instanceof Rejection ? error.message : "Could not serve this channel";
      this.end(grpc.status.INVALID_ARGUMENT, details);
      return;
    }
    if (this.outstanding >= this.maxCredits) {
      this.end(grpc.status.RESOURCE_EXHAUSTED, `More than ${this.maxCredits} credits outstanding on one stream (QUEUES_MAX_CREDITS_PER_STREAM)`);
      return;
    }
    this.outstanding += 1;
    this.pollers.add(poller);
    poller.addCredit(this);
  }

  deliver(task: TaskRecord): boolean {
    if (!this.open) return false;
    this.outstanding -= 1;
    this.delivered += 1;
    this.call.write({ Tasks: toDeliveredWireTask(task) });
    this.log.debug({ taskId: String(task.id), channel: task.channel }, "task delivered");
    if (this.halfClosed && this.outstanding === 0) this.close();
    return true;
  }

  /** The client half-closed: answer the credits it already sent, then end the stream with OK. */
  noMoreCredits(): void {
    this.halfClosed = true;
    if (this.outstanding === 0) this.close();
  }

  /** Ends the stream with a status (OK when the client half-closed). */
  end(code: grpc.status, details: string): void {
    if (this.closed) return;
    this.detach();
    if (code === grpc.status.OK) this.call.end();
    else this.call.emit("error", { code, details });
  }

  /** The client went away, or its last credit was answered after it half-closed: end the stream. */
  close(): void {
    if (this.closed) return;
    this.detach();
    if (!this.call.cancelled && !this.call.destroyed && !this.call.writableEnded) this.call.end();
  }

  /** Its waiting credits are forgotten; tasks in flight to it are handed back by the poller. */
  private detach(): void {
    this.closed = true;
    for (const poller of this.pollers) poller.dropConsumer(this);
    this.log.info({ delivered: this.delivered, creditsLeft: this.outstanding }, "worker stream closed");
    this.onClose?.();
  }

  async shutdown(): Promise<void> {
    this.end(SHUTTING_DOWN.code, SHUTTING_DOWN.details);
  }
}
