// One channel's queues: a LevelQueue per priority level (level 1 first), seen by the
// use cases as one TaskQueue. A task's message goes to its level's queue, with its
// Owner as MessageGroupId when the channel has fairness "owner". A receipt handle
// names its queue: the handles of levels above 1 carry a `p<level>|` prefix (SQS
// handles are base64, so the prefix cannot be part of one), so a task's stored
// handle is acknowledged on the right queue by any replica.
import type { ChannelConfig } from "../config/channels.js";
import type { QueuedTask, ReceivedMessage, SendOptions, TaskQueue } from "../core/task-queues.js";
import type { SlotLimits } from "../tasks/flow-slots.js";
import { LevelQueue } from "./level-queue.js";
import { DeadLetterQueue } from "./dead-letter-queue.js";
import type { SqsClients } from "./sqs-client.js";
import { channelLevels, levelQueueKey, queueNames } from "./queue-definition.js";

const HANDLE_PREFIX = /^p([2-9])\|/;

export class ChannelQueue implements TaskQueue {
  /** Index 0: level 1, the highest. */
  readonly levels: LevelQueue[];
  /** The channel's dead-letter queue (every level's redrive policy points to it). */
  readonly deadLetters: DeadLetterQueue;

  constructor(
    clients: SqsClients,
    readonly config: ChannelConfig,
    /** Queue URLs by level queue key (from CDK); a level without one is found by name. */
    queueUrls: Record<string, string>,
    queuePrefix: string,
  ) {
    this.levels = channelLevels(config).map((level) => {
      const url = queueUrls[levelQueueKey(config.name, level)];
      return new LevelQueue(clients, config, url ? { url } : { name: queueNames(queuePrefix, config.name, level).queue });
    });
    this.deadLetters = new DeadLetterQueue(clients, this.levels[0] as LevelQueue);
  }

  get name(): string {
    return this.config.name;
  }

  /** The lease, in milliseconds. */
  get leaseMs(): number {
    return this.config.visibilityTimeoutSeconds * 1000;
  }

  get limits(): SlotLimits {
    return { maxInFlight: this.config.maxInFlight, concurrencyPerKey: this.config.concurrencyPerKey };
  }

  send(task: QueuedTask, options: SendOptions = {}): Promise<void> {
    const groupId = this.config.fairness === "owner" ? task.owner.toString() : undefined;
    return this.levelOf(task.priority).send({ taskId: task.id, delaySeconds: options.delaySeconds ?? 0, copy: options.copy ?? false, held: options.held ?? 0, groupId });
  }

  /** A long poll of one level's queue (1: the highest); the handles it returns name that level. */
  async receive(level: number, max: number, waitSeconds: number, signal?: AbortSignal): Promise<ReceivedMessage[]> {
    const messages = await this.levelOf(level).receive(max, waitSeconds, signal);
    if (level === 1) return messages;
    return messages.map((message) => ({ ...message, receiptHandle: `p${level}|${message.receiptHandle}` }));
  }

  delete(receiptHandle: string): Promise<void> {
    const { queue, handle } = this.route(receiptHandle);
    return queue.delete(handle);
  }

  changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    const { queue, handle } = this.route(receiptHandle);
    return queue.changeVisibility(handle, seconds);
  }

  /** Every level's queue exists and answers. */
  async probe(): Promise<void> {
    await Promise.all(this.levels.map((queue) => queue.probe()));
  }

  /** Tasks waiting to be delivered, over all levels (approximate, as SQS reports it). */
  async length(): Promise<bigint> {
    const lengths = await Promise.all(this.levels.map((queue) => queue.length()));
    return lengths.reduce((sum, length) => sum + length, 0n);
  }

  /** Waiting and in-flight messages over all levels (approximate, as SQS reports them). */
  async counts(): Promise<{ waiting: number; inFlight: number }> {
    const counts = await Promise.all(this.levels.map((queue) => queue.counts()));
    return counts.reduce((sum, each) => ({ waiting: sum.waiting + each.waiting, inFlight: sum.inFlight + each.inFlight }), { waiting: 0, inFlight: 0 });
  }

  /** A task's level queue; a level above the channel's (its `priorities` lowered since) goes to the lowest. */
  private levelOf(priority: number): LevelQueue {
    const index = Math.min(Math.max(priority, 1), this.levels.length) - 1;
    return this.levels[index] as LevelQueue;
  }

  private route(receiptHandle: string): { queue: LevelQueue; handle: string } {
    const match = HANDLE_PREFIX.exec(receiptHandle);
    if (!match) return { queue: this.levels[0] as LevelQueue, handle: receiptHandle };
    return { queue: this.levelOf(Number(match[1])), handle: receiptHandle.slice(match[0].length) };
  }
}
