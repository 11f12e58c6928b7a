// What the infrastructure (the CDK app in infra/) takes from the server, so that the
// two cannot drift apart: the one definition of the table and of the channel queues,
// the channel list format, the health endpoint, the names of the EMF metrics, and the
// table stream function's entry.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export { INDEXES, LEGACY_INDEXES, PARTITION_KEY, STREAM_VIEW_TYPE, TASK_KEY_PREFIX, TTL_ATTRIBUTE, type IndexDefinition } from "./store/table-definition.js";
export { A as TASK_ATTRIBUTES } from "./store/item-codec.js";
export { channelLevels, channelQueueDefinition, levelQueueKey, queueNames } from "./queue/queue-definition.js";
export { ChannelConfigError, parseChannels, type ChannelConfig, type ChannelEntry } from "./config/channels.js";
export { HEALTH_HTTP_PATH } from "./http/http-endpoint.js";
export { UNEXPECTED_ERROR_LOG_MESSAGE } from "./grpc/call-context.js";
export { DEFAULT_METRICS_NAMESPACE, EMF_DIMENSION, EMF_METRICS, metricsNamespaceProblem } from "./metrics/emf-names.js";

/** The table stream function's handler module, for bundling: its source where there is one, else its build. */
export function tableStreamFunctionEntry(): string {
  const source = fileURLToPath(new URL("./lambda/table-stream.ts", import.meta.url));
  return existsSync(source) ? source : fileURLToPath(new URL("./lambda/table-stream.js", import.meta.url));
}

/** The container's health check: the image runs the server from service/dist (see the Dockerfile). */
export const CONTAINER_HEALTH_COMMAND = ["node", "service/dist/health/check.js"];
