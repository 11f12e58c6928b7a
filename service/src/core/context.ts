// What the task service's parts share: the store, the channels, the retry policy
// and a few settings. Built once per server.
import type { Logger } from "pino";
import type { ChannelRegistry } from "../queue/channel-registry.js";
import type { TaskStore } from "../store/task-store.js";
import type { RetryPolicy } from "../tasks/state-machine.js";
import type { IdGenerator } from "../tasks/ids.js";

export interface CoreContext {
  store: TaskStore;
  channels: ChannelRegistry;
  ids: IdGenerator;
  retry: RetryPolicy;
  /** Delay before the sweeper looks at a task whose outbox marker is still set. */
  sweepAfterMs: number;
  log: Logger;
  now: () => number;
}
