// TaskRecord → the wire Task. uint64 fields go out as decimal strings.
import type { Task } from "../generated/standard/Task.js";
import type { TaskRecord } from "../tasks/task.js";

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
  };
}
