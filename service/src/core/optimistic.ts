// Optimistic concurrency: act on the task as read; if another replica changed it
// in between (StaleTask), decide again on the task as it is now.
import { StaleTask, type StoredTask } from "./task-repository.js";
import { Rejection, Status } from "../tasks/status.js";

const MAX_ROUNDS = 8;

export async function withLatest<T>(
  read: () => Promise<StoredTask | undefined>,
  act: (task: StoredTask | undefined) => Promise<T>,
): Promise<T> {
  let task = await read();
  for (let round = 1; ; round++) {
    try {
      return await act(task);
    } catch (error) {
      if (!(error instanceof StaleTask)) throw error;
      if (round >= MAX_ROUNDS) {
        throw new Rejection(Status.UNAVAILABLE, "The task kept changing while this request ran; retry");
      }
      task = error.current;
    }
  }
}

/**
 * The task a rule of the state machine just decided to act on. The rules answer a
 * missing task themselves (404, or drop the message) before any decision that acts,
 * so past the rule the task exists; this says so to the type checker, and fails
 * loudly should a rule ever change.
 */
export function decidedOn(task: StoredTask | undefined): StoredTask {
  if (!task) throw new Error("a rule decided to act on a task that does not exist");
  return task;
}
