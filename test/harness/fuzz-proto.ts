// The real wire contract as the fuzzer uses it: the server's own serializers (same
// proto file, same proto-loader options), so "does this payload decode?" is answered
// exactly as the server will answer it, and the field numbers/types for hand-encoding.
import type { MethodDefinition, ServiceDefinition } from "@grpc/proto-loader";
import { loadQueuesPackage } from "@queues/protocol";

export const UNARY_METHODS = [
  "CreateTask",
  "QueryTaskByID",
  "CancelTaskByID",
  "QueryTaskByOwner",
  "QueryTaskByHashCode",
  "QueryLengthByChannel",
  "CreateTasks",
  "PutSchedule",
  "DeleteSchedule",
  "QuerySchedules",
  "RerunTaskByID",
] as const;
export const STREAM_METHODS = ["ReceiveQueueByChannel", "ReportTaskResult"] as const;
export const ALL_METHODS = [...UNARY_METHODS, ...STREAM_METHODS] as const;

export type UnaryMethod = (typeof UNARY_METHODS)[number];
export type Method = (typeof ALL_METHODS)[number];

export const methodPath = (method: string) => `/standard.Queues/${method}`;

/** A proto field as the hand-encoder sees it. */
export type FieldKind = "uint64" | "string" | "Task" | "Schedule";
export type FieldSchema = readonly (readonly [number, FieldKind, string])[];

/** standard.Task (proto/standard.proto). */
export const TASK_FIELDS: FieldSchema = [
  [1, "uint64", "ID"],
  [2, "uint64", "Next"],
  [3, "uint64", "Prior"],
  [4, "uint64", "Owner"],
  [5, "string", "State"],
  [6, "string", "Input"],
  [7, "string", "Output"],
  [8, "string", "Channel"],
  [9, "string", "HashCode"],
  [10, "uint64", "RetryCount"],
  [11, "string", "CreateTime"],
  [12, "string", "UpdateTime"],
  [13, "uint64", "RetryMaxLimit"],
  [14, "uint64", "LeaseToken"],
  [15, "string", "LeaseExpireTime"],
  [16, "string", "RunAt"],
  [17, "string", "ConcurrencyKey"],
  [18, "uint64", "Priority"],
  [19, "string", "TraceParent"],
];

/** standard.Schedule (its bool Paused is a varint on the wire: written as a uint64). */
export const SCHEDULE_FIELDS: FieldSchema = [
  [1, "string", "Name"],
  [2, "string", "Cron"],
  [3, "string", "TimeZone"],
  [4, "Task", "Template"],
  [5, "uint64", "Paused"],
  [6, "string", "NextRunTime"],
  [7, "string", "LastRunTime"],
  [8, "string", "CreateTime"],
];

/** Request messages of every RPC, by method. */
export const REQUEST_FIELDS: Record<Method, FieldSchema> = {
  CreateTask: [[1, "Task", "Task"]],
  QueryTaskByID: [[1, "uint64", "ID"]],
  CancelTaskByID: [[1, "uint64", "ID"]],
  QueryTaskByOwner: [
    [1, "uint64", "Owner"],
    [2, "uint64", "Limit"],
    [3, "uint64", "Offset"],
  ],
  QueryTaskByHashCode: [[1, "string", "HashCode"]],
  QueryLengthByChannel: [[1, "string", "Channel"]],
  // A repeated Task is one field per task: the hand-encoder writes one (or none), mutations add more.
  CreateTasks: [[1, "Task", "Tasks"]],
  PutSchedule: [[1, "Schedule", "Schedule"]],
  DeleteSchedule: [[1, "string", "Name"]],
  QuerySchedules: [[1, "string", "Channel"]],
  RerunTaskByID: [[1, "uint64", "ID"]],
  ReceiveQueueByChannel: [[1, "string", "Channel"]],
  ReportTaskResult: [
    [1, "uint64", "ID"],
    [2, "uint64", "State"],
    [3, "string", "Output"],
    [4, "uint64", "LeaseToken"],
  ],
};

type AnyMethod = MethodDefinition<object, object>;

let service: ServiceDefinition | undefined;

function method(name: Method): AnyMethod {
  service ??= loadQueuesPackage().definition["standard.Queues"] as ServiceDefinition;
  const definition = service[name];
  if (!definition) throw new Error(`standard.Queues has no method ${name}`);
  return definition;
}

/** Encodes a request object exactly as a grpc-js client would (uint64 as decimal strings). */
export function encodeRequest(name: Method, message: object): Buffer {
  return method(name).requestSerialize(message);
}

/** The request as the server will see it, or undefined when the server cannot decode it. */
export function decodeRequest(name: Method, payload: Buffer): Record<string, unknown> | undefined {
  try {
    return method(name).requestDeserialize(payload) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Decodes a response; throws when it is not a valid message of the method's response type. */
export function decodeResponse(name: Method, payload: Buffer): Record<string, unknown> {
  return method(name).responseDeserialize(payload) as Record<string, unknown>;
}
