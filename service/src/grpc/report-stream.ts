// ReportTaskResult: each request {ID, State, Output} gets exactly one response
// {State, Message, Data = ID}, in order. Reports are processed concurrently (a
// worker with many tasks in flight is not serialized behind one round trip) and
// answered in the order they arrived. A worker token scoped to channels reports only
// on tasks of its channels (another's: 404, as if absent) and must send the delivery's
// LeaseToken with every report (without: 400): the token, 63 random bits handed to
// the worker the task was delivered to, is what proves it holds the delivery.
import * as grpc from "@grpc/grpc-js";
import type { ReportTaskResultRequest__Output, ReportTaskResultResponse } from "@queues/protocol";
import type { CoreContext } from "../core/context.js";
import { reportResult } from "../core/reports.js";
import { checkPayload, reportKind, requireId, uint64 } from "../tasks/rules.js";
import { invalid, Status } from "../tasks/status.js";
import { toAnswer, type CallContext } from "./call-context.js";
import { streamRpc } from "./rpc.js";
import { SHUTTING_DOWN, type StreamRegistry } from "./stream-registry.js";
import { isUndecodable, undecodableReason } from "./undecodable.js";

/** Reports in flight per stream before the server stops reading more (backpressure). */
const MAX_IN_FLIGHT = 64;

export function reportHandler(ctx: CoreContext, streams: StreamRegistry) {
  return streamRpc<ReportTaskResultRequest__Output, ReportTaskResultResponse>((call, context) => {
    let answered: Promise<void> = Promise.resolve();
    let inFlight = 0;
    let ended = false;

    const finish = (error?: { code: grpc.status; details: string }) => {
      if (ended) return;
      ended = true;
      streams.remove(stream);
      void answered.then(() => {
        if (call.cancelled || call.destroyed || call.writableEnded) return;
        if (error) call.emit("error", error);
        else call.end();
      });
    };
    const stream = {
      shutdown: async () => {
        finish(SHUTTING_DOWN);
        await answered;
      },
    };
    streams.add(stream);

    call.on("data", (request: ReportTaskResultRequest__Output) => {
      if (ended) return;
      const response = context.scope(() => handleReport(ctx, request, context));
      inFlight += 1;
      if (inFlight >= MAX_IN_FLIGHT) call.pause();
      answered = answered.then(async () => {
        const result = await response;
        inFlight -= 1;
        if (inFlight < MAX_IN_FLIGHT) call.resume();
        if (!call.cancelled && !call.destroyed && !call.writableEnded) call.write(result);
      });
    });
    call.on("end", () => finish());
    call.on("cancelled", () => finish());
    call.on("error", () => finish());
  });
}

async function handleReport(ctx: CoreContext, request: ReportTaskResultRequest__Output, context: CallContext): Promise<ReportTaskResultResponse> {
  const { log } = context;
  const started = performance.now();
  let id = 0n;
  if (isUndecodable(request)) {
    return { State: Status.INVALID, Message: `The report is not a valid ReportTaskResultRequest message (${undecodableReason(request)})`, Data: "0" };
  }
  try {
    id = requireId(request.ID);
    const kind = reportKind(uint64(request.State, "State"));
    checkPayload(request.Output, "Output");
    const leaseToken = uint64(request.LeaseToken, "LeaseToken");
    const scope = context.taskScope;
    if (scope?.channels !== undefined && leaseToken === 0n) {
      throw invalid("LeaseToken is required: a worker token scoped to channels must send the delivered task's LeaseToken with every report");
    }
    const outcome = await reportResult(ctx, id, kind, request.Output, leaseToken, scope);
    log.debug({ taskId: String(id), kind, state: outcome.task.state, ms: Math.round(performance.now() - started) }, "report");
    const lease = kind === "PROCEEDING" && outcome.task.state === "PROCEEDING" ? outcome.task.lease : undefined;
    return {
      State: Status.OK,
      Message: outcome.message,
      Data: id.toString(),
      LeaseExpireTime: lease ? new Date(lease.expiresAtMs).toISOString() : "",
    };
  } catch (error) {
    const answer = toAnswer(error, context);
    log.info({ taskId: String(id), state: answer.state, ms: Math.round(performance.now() - started) }, "report rejected");
    return { State: answer.state, Message: answer.message, Data: request.ID || "0" };
  }
}
