// The console's dead letters (issue: operators "put the dead letters back"): a
// channel's DLQ depth, its oldest messages, and the redrive. A dead letter's body is
// its task's ID; a message lands there only when no replica could handle it (the
// server's own retry rule decides a task's fate), so moving it back resumes its task:
// a task still waiting or running is delivered again, a final one's message is
// dropped as a duplicate, as any late copy is.
import type { CoreContext } from "./context.js";

/** A message taken off (or peeked at in) a dead-letter queue. */
export interface DeadLetter {
  receiptHandle: string;
  /** undefined: the body is no task ID (it is moved back all the same; a poller drops it). */
  taskId: bigint | undefined;
  /** When the message was first sent (epoch ms). */
  sentAtMs: number;
}

export interface DeadLetterSummary {
  /** Messages in the DLQ (approximate, as SQS reports it). */
  count: number;
  /** Up to the peeked number of them, not necessarily the oldest (SQS has no order). */
  sample: { taskId: bigint | undefined; sentAtMs: number }[];
}

/** One channel's dead-letter queue (queue/dead-letter-queue.ts). */
export interface DeadLetterQueue {
  summary(peek: number): Promise<DeadLetterSummary>;
  /** Starts the backend's own move of every message back to its source queue; false: the backend has none. */
  startMove(): Promise<boolean>;
  /** Takes up to `max` messages (hidden for a minute). */
  take(max: number): Promise<DeadLetter[]>;
  delete(receiptHandle: string): Promise<void>;
}

/** Most messages one redrive moves itself (a backend with StartMessageMoveTask moves them all). */
export const MANUAL_REDRIVE_MAX = 1_000;

export interface RedriveResult {
  /** "backend": SQS moves them (asynchronously); "copied": this many were sent back by the server now. */
  how: "backend" | "copied";
  moved: number;
}

export class DeadLetters {
  constructor(
    private readonly ctx: CoreContext,
    private readonly queues: (channel: string) => DeadLetterQueue,
  ) {}

  summary(channel: string, peek = 10): Promise<DeadLetterSummary> {
    this.ctx.channels.get(channel); // 400 for a channel that is not configured
    return this.queues(channel).summary(peek);
  }

  /**
   * Moves the channel's dead letters back. Where the backend cannot, each message's task
   * gets a fresh message on its channel (its level, its fairness group), then the dead
   * letter is deleted: a crash in between leaves a copy, never a loss.
   */
  async redrive(channel: string): Promise<RedriveResult> {
    const queue = this.ctx.channels.get(channel);
    const dlq = this.queues(channel);
    if (await dlq.startMove()) {
      this.ctx.log.info({ channel }, "dead letters: move task started");
      return { how: "backend", moved: 0 };
    }
    let moved = 0;
    while (moved < MANUAL_REDRIVE_MAX) {
      const letters = await dlq.take(10);
      if (letters.length === 0) break;
      await Promise.all(
        letters.map(async (letter) => {
          const task = letter.taskId === undefined ? undefined : await this.ctx.store.getTask(letter.taskId);
          // A task that is gone (expired by retention) or of another channel has nothing to resume.
          if (task && task.channel === channel) await queue.send(task, { copy: true });
          await dlq.delete(letter.receiptHandle);
          moved += 1;
        }),
      );
    }
    this.ctx.log.info({ channel, moved }, "dead letters moved back");
    return { how: "copied", moved };
  }
}
