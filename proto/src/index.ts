// @queues/protocol: the wire contract of Queues and everything both sides know.
export { MAX_PAYLOAD_BYTES, payloadBytes, payloadOverLimit, payloadTooLarge } from "./limits.js";
export { FINAL_STATES, isFinal, REPORT_CODES, reportKindOf, TASK_STATES, type ReportKind, type TaskState } from "./states.js";
export { isUint64, MAX_UINT64, parseUint64 } from "./uint64.js";
export { loadQueuesPackage, PROTO_LOADER_OPTIONS, PROTO_PATH, type QueuesPackage } from "./loader.js";
export type * from "./wire-types.js";
