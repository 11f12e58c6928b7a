// What the infrastructure (the CDK app in infra/) takes from the server, so that the
// two cannot drift apart: the one definition of the table and of the channel queues,
// the channel list format, the health endpoint, and the cleanup function's entry.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export { INDEXES, PARTITION_KEY, TASK_KEY_PREFIX, TTL_ATTRIBUTE } from "./store/table-definition.js";
export { channelQueueDefinition, queueNames } from "./queue/queue-definition.js";
export { ChannelConfigError, parseChannels, type ChannelConfig, type ChannelEntry } from "./config/channels.js";
export { HEALTH_HTTP_PATH } from "./health/http-endpoint.js";

/** The expired-task cleanup function's handler module, for bundling: its source where there is one, else its build. */
export function expiredTaskCleanupEntry(): string {
  const source = fileURLToPath(new URL("./lambda/expired-task-cleanup.ts", import.meta.url));
  return existsSync(source) ? source : fileURLToPath(new URL("./lambda/expired-task-cleanup.js", import.meta.url));
}

/** The container's health check: the image runs the server from service/dist (see the Dockerfile). */
export const CONTAINER_HEALTH_COMMAND = ["node", "service/dist/health/check.js"];
