// The configured channels' SQS queues, one ChannelQueue each: what the use cases send
// to, delete from and measure (core's TaskQueues), and what the health check probes.
import type { ChannelConfig } from "../config/channels.js";
import type { TaskQueues } from "../core/task-queues.js";
import { invalid } from "../tasks/status.js";
import { checkChannel } from "../tasks/rules.js";
import { ChannelQueue } from "./channel-queue.js";
import type { SqsClients } from "./sqs-client.js";

export class ChannelQueues implements TaskQueues {
  private readonly queues = new Map<string, ChannelQueue>();
  readonly names: ReadonlySet<string>;
  /** Probes after the server is SERVING check one queue each, in turn. */
  private probes = 0;

  constructor(clients: SqsClients, channels: ChannelConfig[], queueUrls: Record<string, string>, queuePrefix: string) {
    for (const channel of channels) this.queues.set(channel.name, new ChannelQueue(clients, channel, queueUrls, queuePrefix));
    this.names = new Set(this.queues.keys());
  }

  /** The channel's queue; 400 for a channel that is not configured. */
  get(name: string): ChannelQueue {
    checkChannel(name, this.names);
    const queue = this.queues.get(name);
    if (!queue) throw invalid(`Channel "${name}" is not configured`);
    return queue;
  }

  all(): ChannelQueue[] {
    return [...this.queues.values()];
  }

  /**
   * The channel queues exist and answer. `thorough` (until the server is SERVING):
   * every queue; after that one per probe, in turn, because SQS bills
   * GetQueueAttributes like any request.
   */
  async probe(thorough: boolean): Promise<void> {
    const queues = this.all();
    const checked = thorough ? queues : [queues[this.probes++ % queues.length] as ChannelQueue];
    await Promise.all(checked.map((queue) => queue.probe()));
  }
}
