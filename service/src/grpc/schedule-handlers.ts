// The schedule RPCs (SPEC §7.1): PutSchedule, DeleteSchedule, QuerySchedules.
import type { QueuesHandlers, Schedule } from "@queues/protocol";
import type { ScheduleService } from "../core/schedule-service.js";
import type { StoredSchedule } from "../core/schedule-repository.js";
import type { ChannelRegistry } from "../queue/channel-registry.js";
import { checkScheduleName, validateSchedule } from "../tasks/schedule-rules.js";
import { Status } from "../tasks/status.js";
import { unaryRpc } from "./rpc.js";

type ScheduleHandlers = Pick<QueuesHandlers, "PutSchedule" | "DeleteSchedule" | "QuerySchedules">;

export function scheduleHandlers(schedules: ScheduleService, channels: ChannelRegistry): ScheduleHandlers {
  return {
    PutSchedule: unaryRpc(
      async (request) => {
        const stored = await schedules.put(validateSchedule(request.Schedule, channels.names));
        return { State: Status.OK, Message: stored.paused ? "Schedule saved (paused)" : "Schedule saved", Data: toWireSchedule(stored) };
      },
      ({ state, message }) => ({ State: state, Message: message }),
    ),

    DeleteSchedule: unaryRpc(
      async (request) => {
        checkScheduleName(request.Name);
        await schedules.delete(request.Name);
        return { State: Status.OK, Message: "Schedule deleted" };
      },
      ({ state, message }) => ({ State: state, Message: message }),
    ),

    QuerySchedules: unaryRpc(
      async (request) => {
        if (request.Channel !== "") channels.get(request.Channel);
        const found = await schedules.list(request.Channel);
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
    },
    Paused: schedule.paused,
    NextRunTime: iso(schedule.nextRunAtMs),
    LastRunTime: iso(schedule.lastRunAtMs),
    CreateTime: schedule.createTime,
  };
}
