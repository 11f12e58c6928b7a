// The schedule RPCs (SPEC §7.1): PutSchedule, DeleteSchedule, QuerySchedules. A token
// scoped to owners may put schedules only for them (PERMISSION_DENIED otherwise, as
// CreateTask) and sees only theirs.
import * as grpc from "@grpc/grpc-js";
import type { QueuesHandlers, Schedule } from "@queues/protocol";
import type { ScheduleService } from "../core/schedule-service.js";
import type { StoredSchedule } from "../core/schedule-repository.js";
import type { ChannelRegistry } from "../queue/channel-registry.js";
import { checkScheduleName, validateSchedule } from "../tasks/schedule-rules.js";
import { Status } from "../tasks/status.js";
import { unaryRpc } from "./rpc.js";
import { CallRefused } from "./call-context.js";
import { ownerInScope } from "../tasks/scope.js";

type ScheduleHandlers = Pick<QueuesHandlers, "PutSchedule" | "DeleteSchedule" | "QuerySchedules">;

export function scheduleHandlers(schedules: ScheduleService, channels: ChannelRegistry): ScheduleHandlers {
  return {
    PutSchedule: unaryRpc(
      async (request, context) => {
        const spec = validateSchedule(request.Schedule, channels);
        if (!ownerInScope(context.taskScope, spec.template.owner)) {
          throw new CallRefused(grpc.status.PERMISSION_DENIED, `This token is scoped to other owners: it may not schedule tasks for Owner ${spec.template.owner}`);
        }
        const stored = await schedules.put(spec, context.taskScope);
        return { State: Status.OK, Message: stored.paused ? "Schedule saved (paused)" : "Schedule saved", Data: toWireSchedule(stored) };
      },
      ({ state, message }) => ({ State: state, Message: message }),
    ),

    DeleteSchedule: unaryRpc(
      async (request, context) => {
        checkScheduleName(request.Name);
        await schedules.delete(request.Name, context.taskScope);
        return { State: Status.OK, Message: "Schedule deleted" };
      },
      ({ state, message }) => ({ State: state, Message: message }),
    ),

    QuerySchedules: unaryRpc(
      async (request, context) => {
        if (request.Channel !== "") channels.get(request.Channel);
        const found = await schedules.list(request.Channel, context.taskScope);
        return { State: Status.OK, Message: "OK", Data: found.map(toWireSchedule) };
      },
      ({ state, message }) => ({ State: state, Message: message, Data: [] }),
    ),
  };
}

export function toWireSchedule(schedule: StoredSchedule): Schedule {
  const iso = (ms: number | undefined) => (ms === undefined ? "" : new Date(ms).toISOString());
  return {
    Name: schedule.name,
    Cron: schedule.cron,
    TimeZone: schedule.timeZone,
    Template: {
      Channel: schedule.template.channel,
      Input: schedule.template.input,
      Owner: schedule.template.owner.toString(),
      RetryMaxLimit: schedule.template.retryMaxLimit.toString(),
      Priority: String(schedule.template.priority),
      ConcurrencyKey: schedule.template.concurrencyKey,
    },
    Paused: schedule.paused,
    NextRunTime: iso(schedule.nextRunAtMs),
    LastRunTime: iso(schedule.lastRunAtMs),
    CreateTime: schedule.createTime,
  };
}
