// Optimistic concurrency: act on the task as read; if another replica changed it
// in between (StaleTask), decide again on the task as it is now.
import { StaleTask } from "../store/task-store.js";
import type { StoredTask } from "../store/item-codec.js";
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
