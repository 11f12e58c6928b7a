// The six unary RPCs: parse and validate the request (rules.ts), call the task
// service, shape the response. Errors become States in the unaryRpc wrapper (rpc.ts).
// A scoped token's scope (the call context's taskScope) goes to the task service,
// which answers a task outside it as absent; only a CreateTask for an Owner outside
// it is refused outright (PERMISSION_DENIED, like a token without the role).
import * as grpc from "@grpc/grpc-js";
import type { QueuesHandlers } from "@queues/protocol";
import type { TaskService } from "../core/task-service.js";
import type { ChannelRegistry } from "../queue/channel-registry.js";
import { checkHashCodeLookup, page, PAGE_MAX_BYTES, requireId, uint64, validateNewTask } from "../tasks/rules.js";
import { invalid, Status } from "../tasks/status.js";
import type { TaskRecord } from "../tasks/task.js";
import { ownerInScope } from "../tasks/scope.js";
import { CallRefused } from "./call-context.js";
import { unaryRpc } from "./rpc.js";
import { toWireTask } from "./wire.js";

type UnaryHandlers = Pick<
  QueuesHandlers,
  "CreateTask" | "QueryTaskByID" | "QueryTaskByHashCode" | "QueryTaskByOwner" | "CancelTaskByID" | "QueryLengthByChannel"
>;

export function unaryHandlers(tasks: TaskService, channels: ChannelRegistry): UnaryHandlers {
  return {
    CreateTask: unaryRpc(
      async (request, context, progress) => {
        const task = validateNewTask(request.Task, channels.names);
        const scope = context.taskScope;
        if (!ownerInScope(scope, task.owner)) {
          throw new CallRefused(grpc.status.PERMISSION_DENIED, `This token is scoped to other owners: it may not create a task for Owner ${task.owner}`);
        }
        const hashCode = await tasks.create(
          task,
          (code) => {
            progress.outcomeUnknown = {
              message: "The backends did not answer before the call's deadline; the task may or may not exist: look it up by the HashCode in Data before creating it again",
              data: code,
            };
          },
          scope,
        );
        return { State: Status.OK, Message: "Task created", Data: hashCode };
      },
      ({ state, message, data }) => ({ State: state, Message: message, Data: typeof data === "string" ? data : "" }),
    ),

    QueryTaskByID: unaryRpc(
      async (request, context) => {
        const task = await tasks.getById(requireId(request.ID), context.taskScope);
        return { State: Status.OK, Message: "OK", Data: toWireTask(task) };
      },
      ({ state, message }) => ({ State: state, Message: message }),
    ),

    QueryTaskByHashCode: unaryRpc(
      async (request, context) => {
        if (request.HashCode === "") throw invalid("HashCode is required");
        checkHashCodeLookup(request.HashCode);
        const task = await tasks.getByHashCode(request.HashCode, context.taskScope);
        return { State: Status.OK, Message: "OK", Data: toWireTask(task) };
      },
      ({ state, message }) => ({ State: state, Message: message }),
    ),

    QueryTaskByOwner: unaryRpc(
      async (request, context, progress) => {
        const owner = uint64(request.Owner, "Owner");
        const asked = page(uint64(request.Limit, "Limit"), uint64(request.Offset, "Offset"));
        // Another owner than a scoped token's: Total 0 and an empty page, as for an owner without tasks.
        const { total, tasks: found, cut } = await tasks.listByOwner(owner, asked, progress.signal, context.taskScope);
        const message = cut
          ? `OK; the page stops after ${found.length} task(s): an answer carries at most ${PAGE_MAX_BYTES} bytes of tasks; the next ones start at Offset ${asked.offset + BigInt(found.length)}`
          : "OK";
        return { State: Status.OK, Message: message, Total: total.toString(), Data: found.map(toWireTask) };
      },
      ({ state, message }) => ({ State: state, Message: message, Total: "0", Data: [] }),
    ),

    CancelTaskByID: unaryRpc(
      async (request, context) => {
        const { tasks: cancelled, hidden, cascadePending, payloadsMissing } = await tasks.cancel(requireId(request.ID), context.taskScope);
        const notes = [
          hidden > 0 ? `${hidden} more task(s) of its chain, of other owners, were cancelled too (not shown)` : "",
          cascadePending ? "the rest of its chain is being cancelled in the background" : "",
          payloadsMissing ? "large Inputs/Outputs are not shown (reading them failed; query the tasks by ID)" : "",
        ].filter(Boolean);
        return { State: Status.OK, Message: `Cancelled ${cancelled.length} task(s)${notes.length ? `; ${notes.join("; ")}` : ""}`, Data: cancelled.map(toWireTask) };
      },
      ({ state, message, data }) => ({ State: state, Message: message, Data: Array.isArray(data) ? (data as TaskRecord[]).map(toWireTask) : [] }),
    ),

    QueryLengthByChannel: unaryRpc(
      async (request) => {
        channels.get(request.Channel);
        const length = await tasks.length(request.Channel);
        return { State: Status.OK, Message: "OK", Data: length.toString() };
      },
      ({ state, message }) => ({ State: state, Message: message, Data: "0" }),
    ),
  };
}
