// The task RPCs that are unary: parse and validate the request (rules.ts), call the
// task service, shape the response. Errors become States in the unaryRpc wrapper (rpc.ts).
// A scoped token's scope (the call context's taskScope) goes to the task service,
// which answers a task outside it as absent; only a create for an Owner outside
// it is refused outright (PERMISSION_DENIED, like a token without the role).
import * as grpc from "@grpc/grpc-js";
import type { CreateTaskResponse, QueuesHandlers } from "@queues/protocol";
import type { TaskService } from "../core/task-service.js";
import type { ChannelRegistry } from "../queue/channel-registry.js";
import { checkHashCodeLookup, page, PAGE_MAX_BYTES, requireId, uint64, validateNewTask } from "../tasks/rules.js";
import { conflict, invalid, Status } from "../tasks/status.js";
import type { TaskRecord } from "../tasks/task.js";
import { ownerInScope } from "../tasks/scope.js";
import { CallRefused } from "./call-context.js";
import { unaryRpc } from "./rpc.js";
import { toAnswer } from "./call-context.js";
import { toWireTask } from "./wire.js";

type UnaryHandlers = Pick<
  QueuesHandlers,
  "CreateTask" | "CreateTasks" | "QueryTaskByID" | "QueryTaskByHashCode" | "QueryTaskByOwner" | "CancelTaskByID" | "QueryLengthByChannel" | "RerunTaskByID"
>;

/** CreateTasks takes 1 to this many tasks (SPEC §7.1). */
export const MAX_BATCH_TASKS = 100;
/** Creates of one batch in flight at once (their SQS sends are batched by ten). */
const BATCH_CONCURRENCY = 20;

export function unaryHandlers(tasks: TaskService, channels: ChannelRegistry, now: () => number): UnaryHandlers {
  return {
    CreateTask: unaryRpc(
      async (request, context, progress) => {
        const task = { ...validateNewTask(request.Task, channels, now()), traceParent: context.traceParent };
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

    CreateTasks: unaryRpc(
      async (request, context, progress) => {
        const wireTasks = request.Tasks ?? [];
        if (wireTasks.length === 0 || wireTasks.length > MAX_BATCH_TASKS) {
          throw invalid(`Tasks must hold 1 to ${MAX_BATCH_TASKS} tasks, got ${wireTasks.length}`);
        }
        progress.outcomeUnknown = {
          message:
            "The backends did not answer before the call's deadline; some of the tasks may exist: look them up by their HashCodes before creating them again (a task without a HashCode may be created twice)",
        };
        const seen = new Set<string>();
        const checked = wireTasks.map((wireTask) => {
          try {
            const task = { ...validateNewTask(wireTask, channels, now()), traceParent: context.traceParent };
            // The same HashCode twice in one batch: the first is created, the later ones are 409 (as a second CreateTask would be).
            if (task.hashCode !== "" && seen.has(task.hashCode)) throw duplicateInBatch(task.hashCode);
            if (task.hashCode !== "") seen.add(task.hashCode);
            return task;
          } catch (error) {
            return { error };
          }
        });
        // A token scoped to owners may create only for them: the whole call is refused, as CreateTask would be.
        const outside = checked.find((task) => "owner" in task && !ownerInScope(context.taskScope, task.owner));
        if (outside && "owner" in outside) {
          throw new CallRefused(grpc.status.PERMISSION_DENIED, `This token is scoped to other owners: it may not create a task for Owner ${outside.owner}`);
        }
        const outcomes = await tasks.createAll(checked, BATCH_CONCURRENCY, context.taskScope);
        const results: CreateTaskResponse[] = outcomes.map((outcome) => {
          if ("hashCode" in outcome) return { State: Status.OK, Message: "Task created", Data: outcome.hashCode };
          const { state, message, data } = toAnswer(outcome.error, context);
          return { State: state, Message: message, Data: typeof data === "string" ? data : "" };
        });
        const created = results.filter((result) => result.State === Status.OK).length;
        return { State: Status.OK, Message: `Created ${created} of ${wireTasks.length} task(s)`, Results: results };
      },
      ({ state, message }) => ({ State: state, Message: message, Results: [] }),
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

    RerunTaskByID: unaryRpc(
      async (request, context, progress) => {
        const hashCode = await tasks.rerun(
          requireId(request.ID),
          (code) => {
            progress.outcomeUnknown = {
              message: "The backends did not answer before the call's deadline; the new task may or may not exist: look it up by the HashCode in Data",
              data: code,
            };
          },
          context.taskScope,
          context.traceParent,
        );
        return { State: Status.OK, Message: `Task created from task ${request.ID}`, Data: hashCode };
      },
      ({ state, message, data }) => ({ State: state, Message: message, Data: typeof data === "string" ? data : "" }),
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

const duplicateInBatch = (hashCode: string) =>
  conflict(`A task with HashCode "${hashCode}" comes earlier in this batch; this one was not created`, hashCode);
