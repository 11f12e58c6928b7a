// The TypeScript types of the protocol's messages and service, generated from
// standard.proto by proto-loader-gen-types (src/generated/, made by `npm run generate`).
export type { ProtoGrpcType } from "./generated/standard.js";
export type { QueuesClient as QueuesServiceClient, QueuesDefinition, QueuesHandlers } from "./generated/standard/Queues.js";
export type { Task, Task__Output } from "./generated/standard/Task.js";
export type { CreateTaskRequest, CreateTaskRequest__Output } from "./generated/standard/CreateTaskRequest.js";
export type { CreateTaskResponse, CreateTaskResponse__Output } from "./generated/standard/CreateTaskResponse.js";
export type { QueryTaskByIDRequest, QueryTaskByIDRequest__Output } from "./generated/standard/QueryTaskByIDRequest.js";
export type { QueryTaskByIDResponse, QueryTaskByIDResponse__Output } from "./generated/standard/QueryTaskByIDResponse.js";
export type { QueryTaskByHashCodeRequest, QueryTaskByHashCodeRequest__Output } from "./generated/standard/QueryTaskByHashCodeRequest.js";
export type { QueryTaskByHashCodeResponse, QueryTaskByHashCodeResponse__Output } from "./generated/standard/QueryTaskByHashCodeResponse.js";
export type { QueryTaskByOwnerRequest, QueryTaskByOwnerRequest__Output } from "./generated/standard/QueryTaskByOwnerRequest.js";
export type { QueryTaskByOwnerResponse, QueryTaskByOwnerResponse__Output } from "./generated/standard/QueryTaskByOwnerResponse.js";
export type { CancelTaskByIDRequest, CancelTaskByIDRequest__Output } from "./generated/standard/CancelTaskByIDRequest.js";
export type { CancelTaskByIDResponse, CancelTaskByIDResponse__Output } from "./generated/standard/CancelTaskByIDResponse.js";
export type { QueryLengthByChannelRequest, QueryLengthByChannelRequest__Output } from "./generated/standard/QueryLengthByChannelRequest.js";
export type { QueryLengthByChannelResponse, QueryLengthByChannelResponse__Output } from "./generated/standard/QueryLengthByChannelResponse.js";
export type { ReceiveQueueByChannelRequest, ReceiveQueueByChannelRequest__Output } from "./generated/standard/ReceiveQueueByChannelRequest.js";
export type { ReceiveQueueByChannelResponse, ReceiveQueueByChannelResponse__Output } from "./generated/standard/ReceiveQueueByChannelResponse.js";
export type { ReportTaskResultRequest, ReportTaskResultRequest__Output } from "./generated/standard/ReportTaskResultRequest.js";
export type { ReportTaskResultResponse, ReportTaskResultResponse__Output } from "./generated/standard/ReportTaskResultResponse.js";
