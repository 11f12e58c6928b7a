// Turning SQS messages into deliveries. A message becomes a delivery only after the
// conditional WAITING → PROCEEDING write succeeds; everything else a message can
// mean (duplicate, cancelled or missing task, expired lease) is handled here and
// never reaches a worker.
import { finalOutbox, type CoreContext } from "./context.js";
import type { DeliveryHandler, ReceivedMessage, TaskQueue } from "./task-queues.js";
import { SlotsFull, type StoredTask } from "./task-repository.js";
import { holdBackSeconds, limitsSlots, slotsFor } from "../tasks/flow-slots.js";
import { FullSlots } from "./full-slots.js";
import { afterFailedAttempt, decideDelivery } from "../tasks/state-machine.js";
import { decidedOn, withLatest } from "./optimistic.js";
import { bestEffort } from "./best-effort.js";
import { dueAtMs, runMsOf } from "./task-events.js";
import { followUpOrLeaveToSweeper } from "./chains.js";
import { newLeaseToken } from "../tasks/ids.js";

/** SQS hides a received message at most 12 hours, and delays a new one at most 15 minutes. */
const MAX_VISIBILITY_SECONDS = 43_200;
const MAX_SQS_DELAY_SECONDS = 900;

export class Delivery implements DeliveryHandler {
  private readonly fullSlots: FullSlots;

  constructor(private readonly ctx: CoreContext) {
    this.fullSlots = new FullSlots(ctx.now);
  }

  /** While the channel's maxInFlight is known full, its poller waits this long before receiving again. */
  pauseMs(queue: TaskQueue): number {
    const channelSlot = slotsFor({ channel: queue.name, concurrencyKey: "" }, queue.limits)[0];
    return channelSlot && queue.limits.maxInFlight !== undefined ? this.fullSlots.remainingMs(channelSlot.id) : 0;
  }

  async lease(queue: TaskQueue, message: ReceivedMessage): Promise<StoredTask | undefined> {
    const { ctx } = this;
    const taskId = message.taskId;
    if (taskId === undefined) {
      await this.drop(queue, message, "the message body is not a task ID");
      return undefined;
    }
    // The usual case (a queued task's message) is one conditional write; anything else
    // comes back as the task as it is, and the rules below decide what the message means.
    // A copy is read first: it usually finds its task taken, and a read costs less than a failed write.
    // So is a task of a channel with slot limits: its lease takes the slots of its key, known from the read.
    let first: StoredTask | undefined;
    if (message.copy || limitsSlots(queue.limits)) first = await ctx.store.getTask(taskId);
    else {
      const unread = await ctx.store.leaseUnread(taskId, message, queue.leaseMs);
      if ("written" in unread) return this.handOver(queue, unread.written);
      first = unread.current;
    }
    let finished: StoredTask | undefined;
    const leased = await withLatest(
      async () => first,
      async (task): Promise<StoredTask | undefined> => {
        const decision = decideDelivery(task, message.messageId, ctx.now());
        if (decision.action === "drop") {
          await this.drop(queue, message, decision.reason);
          return undefined;
        }
        const current = decidedOn(task);
        switch (decision.action) {
          case "lease": {
            const takeSlots = slotsFor(current, queue.limits);
            // A slot that refused a lease a moment ago: held back without a transaction bound to be refused.
            const knownFull = takeSlots.find((slot) => this.fullSlots.remainingMs(slot.id) > 0);
            if (knownFull) {
              await this.holdBack(queue, message, current, knownFull.id);
              return undefined;
            }
            try {
              const leased = await ctx.store.transition(current, "lease", {
                lease: {
                  token: newLeaseToken(current.lease?.token),
                  messageId: message.messageId,
                  receiptHandle: message.receiptHandle,
                  expiresAtMs: ctx.now() + queue.leaseMs,
                  startedAtMs: ctx.now(),
                },
                // The outbox marker stays: it is the task's watchdog until it is final (see sweeper.ts).
                ...(takeSlots.length > 0 ? { takeSlots } : {}),
              });
              for (const slot of takeSlots) this.fullSlots.took(slot.id);
              return leased;
            } catch (error) {
              if (!(error instanceof SlotsFull)) throw error;
              this.fullSlots.refused(error.slotId);
              await this.holdBack(queue, message, current, error.slotId);
              return undefined;
            }
          }
          case "defer":
            // Early for its RunAt (this replica's clock is ahead of the sender's): the message comes back then.
            await bestEffort(ctx.log, "deferral of an early message", { taskId: String(taskId) }, () =>
              queue.changeVisibility(message.receiptHandle, Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(decision.remainingMs / 1000))),
            );
            return undefined;
          case "renew":
            await ctx.store.renewReceiptHandle(current, message.receiptHandle);
            await bestEffort(ctx.log, "lease renewal", { taskId: String(taskId) }, () =>
              queue.changeVisibility(message.receiptHandle, decision.remainingMs / 1000),
            );
            return undefined;
          case "expire": {
            // The worker neither reported nor heartbeated in time: a failed attempt. From
            // now on this message carries the task (it may be a copy the sweeper sent).
            const attempt = afterFailedAttempt(current, ctx.retry);
            ctx.log.warn({ taskId: String(taskId), retryCount: String(attempt.retryCount) }, "lease expired without a report");
            ctx.events.leaseExpired(current);
            if (attempt.transition === "fail") {
              finished = await ctx.store.transition(current, "fail", {
                retryCount: attempt.retryCount,
                message,
                outbox: finalOutbox(ctx, current),
              });
              ctx.events.finished(finished, runMsOf(current, ctx.now()));
              await bestEffort(ctx.log, "delete of a failed task's message", { taskId: String(taskId) }, () =>
                queue.delete(message.receiptHandle),
              );
              return undefined;
            }
            ctx.events.retried(
              await ctx.store.transition(current, "retry", {
                retryCount: attempt.retryCount,
                notBeforeMs: ctx.now() + attempt.backoffMs,
                message,
              }),
            );
            await bestEffort(ctx.log, "retry backoff", { taskId: String(taskId) }, () =>
              queue.changeVisibility(message.receiptHandle, attempt.backoffMs / 1000),
            );
            return undefined;
          }
        }
      },
    );
    if (finished?.outbox) await followUpOrLeaveToSweeper(ctx, finished);
    return leased ? this.handOver(queue, leased) : undefined;
  }

  /** The leased task with its payloads, ready for a worker. */
  private async handOver(queue: TaskQueue, leased: StoredTask): Promise<StoredTask> {
    try {
      const task = await this.ctx.store.withPayloads(leased);
      this.ctx.events.delivered(task, Math.max(0, this.ctx.now() - dueAtMs(task)));
      return task;
    } catch (error) {
      // Leased but not deliverable: undo the lease now rather than let it expire as a failed attempt.
      await this.handBack(queue, leased);
      throw error;
    }
  }

  async handBack(queue: TaskQueue, task: StoredTask): Promise<void> {
    const { ctx } = this;
    try {
      await ctx.store.transition(task, "handBack");
    } catch (error) {
      // Leave it: the lease expires and SQS redelivers (counted as an attempt).
      ctx.log.warn({ err: error, taskId: String(task.id) }, "could not hand a leased task back");
      return;
    }
    const handle = task.lease?.receiptHandle;
    if (handle) await bestEffort(ctx.log, "release of an undelivered message", { taskId: String(task.id) }, () => queue.changeVisibility(handle, 0));
  }

  /**
   * The task's slot is full (maxInFlight, or its key's concurrencyPerKey): it waits,
   * WAITING, with no attempt counted. Its message is sent again, delayed (1 s, doubling
   * each time it is held back, up to 10 s), and this one deleted: a new message starts
   * with no receives, so a long wait never brings it near the dead-letter queue, and
   * the tasks of other keys are received meanwhile. A crash in between leaves two
   * messages, and the lease is conditional.
   */
  private async holdBack(queue: TaskQueue, message: ReceivedMessage, task: StoredTask, slotId: string): Promise<void> {
    const { ctx } = this;
    const now = ctx.now();
    const held = (message.held ?? 0) + 1;
    // Never back before the task's own RunAt / retry backoff: such a message would be dropped as early.
    const delaySeconds = Math.min(MAX_SQS_DELAY_SECONDS, Math.max(holdBackSeconds(held - 1, ctx.holdBackMaxSeconds), Math.ceil((task.notBeforeMs - now) / 1000)));
    await queue.send(task, { delaySeconds, held, copy: message.copy ?? false });
    ctx.log.debug({ taskId: String(task.id), slot: slotId, delaySeconds }, "held back by a full flow-control slot");
    await bestEffort(ctx.log, "delete of a held-back task's message", { taskId: String(task.id) }, () => queue.delete(message.receiptHandle));
    // The task's watchdog (its outbox marker) moves on while it is held back: it has a
    // message, and a sweeper copy would be held back in turn, one more message each time.
    const outbox = task.outbox;
    const watchdogAt = now + delaySeconds * 1000 + ctx.sweepAfterMs;
    if (outbox && !outbox.parked && outbox.dueAtMs < now + delaySeconds * 1000 + ctx.sweepAfterMs / 2) {
      await bestEffort(ctx.log, "moving a held-back task's watchdog", { taskId: String(task.id) }, () => ctx.store.claimOutbox(task, watchdogAt, outbox.sweeps));
    }
  }

  private async drop(queue: TaskQueue, message: ReceivedMessage, reason: string): Promise<void> {
    this.ctx.log.info({ taskId: message.taskId?.toString(), messageId: message.messageId, reason }, "dropped a message");
    await bestEffort(this.ctx.log, "delete of a dropped message", { messageId: message.messageId }, () => queue.delete(message.receiptHandle));
  }
}
