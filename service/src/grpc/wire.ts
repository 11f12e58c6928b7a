// TaskRecord → the wire Task. uint64 fields go out as decimal strings.
import type { Task } from "@queues/protocol";
import type { TaskRecord } from "../tasks/task.js";

/** A task handed to a worker: the wire task plus its lease (token and end). */
export function toDeliveredWireTask(task: TaskRecord): Task {
  return {
    ...toWireTask(task),
    LeaseToken: (task.lease?.token ?? 0n).toString(),
    LeaseExpireTime: task.lease ? new Date(task.lease.expiresAtMs).toISOString() : "",
  };
}

export function toWireTask(task: TaskRecord): Task {
  return {
    ID: task.id.toString(),
    Next: task.next.toString(),
    Prior: task.prior.toString(),
    Owner: task.owner.toString(),
    State: task.state,
    Input: task.input,
    Output: task.output,
    Channel: task.channel,
    HashCode: task.hashCode,
    RetryCount: task.retryCount.toString(),
    CreateTime: task.createTime,
    UpdateTime: task.updateTime,
    RetryMaxLimit: task.retryMaxLimit.toString(),
    RunAt: task.runAtMs > 0 ? new Date(task.runAtMs).toISOString() : "",
    ConcurrencyKey: task.concurrencyKey,
    Priority: String(task.priority),
    TraceParent: task.traceParent ?? "",
  };
}
