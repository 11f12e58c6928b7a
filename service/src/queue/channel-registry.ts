// The configured channels of this replica: each one's queue and, once a worker asks
// for its tasks, its shared poller.
import type { Logger } from "pino";
import type { ChannelConfig } from "../config/channels.js";
import { invalid } from "../tasks/status.js";
import { checkChannel } from "../tasks/rules.js";
import { ChannelQueue } from "./channel-queue.js";
import { ChannelPoller, type DeliveryHandler } from "./channel-poller.js";
import { queueNames } from "./queue-definition.js";
import type { SqsClients } from "./sqs-client.js";

export class ChannelRegistry {
  private readonly queues = new Map<string, ChannelQueue>();
  private readonly pollers = new Map<string, ChannelPoller>();
  private handler: DeliveryHandler | undefined;
  readonly names: ReadonlySet<string>;

  constructor(
    clients: SqsClients,
    channels: ChannelConfig[],
    queueUrls: Record<string, string>,
    queuePrefix: string,
    private readonly log: Logger,
  ) {
    for (const channel of channels) {
      const url = queueUrls[channel.name];
      const location = url ? { url } : { name: queueNames(queuePrefix, channel.name).queue };
      this.queues.set(channel.name, new ChannelQueue(clients, channel, location));
    }
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

  setDeliveryHandler(handler: DeliveryHandler): void {
    this.handler = handler;
  }

  poller(name: string): ChannelPoller {
    const queue = this.get(name);
    let poller = this.pollers.get(name);
    if (!poller) {
      if (!this.handler) throw new Error("no delivery handler registered");
      poller = new ChannelPoller(queue, this.handler, this.log);
      this.pollers.set(name, poller);
    }
    return poller;
  }

  activePollers(): ChannelPoller[] {
    return [...this.pollers.values()];
  }
}
