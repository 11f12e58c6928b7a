import { describe, expect, it } from "vitest";
import { MAX_BATCH_ENTRIES, RequestBatcher, type BatchEntryResult } from "../../service/src/queue/request-batcher.js";

/** A batch call that answers when told to, recording what each call carried. */
function controlledCall() {
  const calls: { values: number[]; answer: (results?: BatchEntryResult[] | Error) => void }[] = [];
  const call = (entries: { id: string; value: number }[]) =>
    new Promise<BatchEntryResult[]>((resolve, reject) => {
      calls.push({
        values: entries.map((entry) => entry.value),
        answer: (results) => (results instanceof Error ? reject(results) : resolve(results ?? entries.map((entry) => ({ id: entry.id })))),
      });
    });
  return { calls, call };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("RequestBatcher", () => {
  it("sends a lone entry at once and batches what arrives while a call is in flight", async () => {
    const { calls, call } = controlledCall();
    const batcher = new RequestBatcher(call);
    const first = batcher.add(1);
    expect(calls.map((c) => c.values)).toEqual([[1]]);
    const rest = [2, 3, 4].map((value) => batcher.add(value));
    expect(calls).toHaveLength(1);
    calls[0]?.answer();
    await first;
    await tick();
    expect(calls.map((c) => c.values)).toEqual([[1], [2, 3, 4]]);
    calls[1]?.answer();
    await Promise.all(rest);
  });

  it("never puts more than 10 entries in a call, and sends a full batch without waiting", async () => {
    const { calls, call } = controlledCall();
    const batcher = new RequestBatcher(call);
    const all = Array.from({ length: 1 + 2 * MAX_BATCH_ENTRIES + 3 }, (_, i) => batcher.add(i));
    expect(calls.map((c) => c.values.length)).toEqual([1, 10, 10]);
    for (const c of calls) c.answer();
    await tick();
    expect(calls.map((c) => c.values.length)).toEqual([1, 10, 10, 3]);
    calls[3]?.answer();
    await Promise.all(all);
  });

  it("rejects only the entries SQS refused, and every entry of a call that failed", async () => {
    const { calls, call } = controlledCall();
    const batcher = new RequestBatcher(call);
    const lone = batcher.add(0);
    const pair = [batcher.add(1), batcher.add(2)];
    calls[0]?.answer(new Error("network down"));
    await expect(lone).rejects.toThrow("network down");
    await tick();
    calls[1]?.answer([{ id: "0" }, { id: "1", error: new Error("ReceiptHandleIsInvalid") }]);
    await expect(pair[0]).resolves.toBeUndefined();
    await expect(pair[1]).rejects.toThrow("ReceiptHandleIsInvalid");
  });

  it("does not let a slow call hold up the entries behind it longer than the wait limit", async () => {
    const { calls, call } = controlledCall();
    const batcher = new RequestBatcher(call, 10);
    void batcher.add(1); // its call never answers
    const second = batcher.add(2);
    expect(calls).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(calls.map((c) => c.values)).toEqual([[1], [2]]);
    calls[1]?.answer();
    await second;
  });

  it("tries again an entry SQS refused through its own fault, and gives up after three tries", async () => {
    const { calls, call } = controlledCall();
    const batcher = new RequestBatcher(call);
    const retried = batcher.add(1);
    calls[0]?.answer([{ id: "0", error: new Error("InternalError"), retryable: true }]);
    await tick();
    expect(calls.map((c) => c.values)).toEqual([[1], [1]]);
    calls[1]?.answer();
    await retried;

    const doomed = batcher.add(2);
    for (let attempt = 2; attempt < 5; attempt++) {
      await tick();
      calls[attempt]?.answer([{ id: "0", error: new Error("InternalError"), retryable: true }]);
    }
    await expect(doomed).rejects.toThrow("InternalError");
    expect(calls).toHaveLength(5);
  });
});
