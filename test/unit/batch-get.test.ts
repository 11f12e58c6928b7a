import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterEach, describe, expect, it, vi } from "vitest";
import { batchGetItems } from "../../service/src/store/batch-get.js";

type Key = { pk: string };

/** A document client whose BatchGetItem answers the first `answered(request)` keys of each request and leaves the rest unprocessed. */
function fakeDb(answered: (keys: Key[], request: number) => number) {
  const requests: { keys: string[]; consistent: boolean | undefined }[] = [];
  const db = {
    send: async (command: { input: { RequestItems: Record<string, { Keys: Key[]; ConsistentRead?: boolean }> } }) => {
      const { Keys, ConsistentRead } = command.input.RequestItems.t as { Keys: Key[]; ConsistentRead?: boolean };
      requests.push({ keys: Keys.map((key) => key.pk), consistent: ConsistentRead });
      const count = answered(Keys, requests.length);
      return {
        Responses: { t: Keys.slice(0, count).map((key) => ({ ...key, value: `v-${key.pk}` })) },
        UnprocessedKeys: count < Keys.length ? { t: { Keys: Keys.slice(count) } } : {},
      };
    },
  } as unknown as DynamoDBDocumentClient;
  return { db, requests };
}

afterEach(() => vi.useRealTimers());

describe("batchGetItems", () => {
  it("reads 100 keys a request, asks again for the unprocessed ones, and answers every item by its key", async () => {
    const keys = Array.from({ length: 250 }, (_, i) => `k${i}`);
    // Every first request of a chunk leaves its last 30 keys unprocessed.
    const { db, requests } = fakeDb((asked) => (asked.length > 30 ? asked.length - 30 : asked.length));
    const items = await batchGetItems(db, "t", keys, { consistent: true });
    expect(requests.map((request) => request.keys.length)).toEqual([100, 30, 100, 30, 50, 30]);
    expect(requests.every((request) => request.consistent === true)).toBe(true);
    expect([...items.keys()].sort()).toEqual([...keys].sort());
    expect(items.get("k249")).toEqual({ pk: "k249", value: "v-k249" });
  });

  it("reads eventually consistent when asked, and a missing key is simply absent", async () => {
    const { db, requests } = fakeDb((asked) => asked.length);
    const items = await batchGetItems(db, "t", ["a"], { consistent: false });
    expect(requests).toEqual([{ keys: ["a"], consistent: false }]);
    expect(items.get("b")).toBeUndefined();
  });

  it("gives up with an error after 11 requests again that left keys unprocessed (about 7 s of pauses)", async () => {
    vi.useFakeTimers();
    const { db, requests } = fakeDb(() => 0);
    const reading = batchGetItems(db, "t", ["a", "b"], { consistent: true });
    const failed = expect(reading).rejects.toThrow(/unprocessed after 11 retries/);
    await vi.advanceTimersByTimeAsync(8_000);
    await failed;
    expect(requests).toHaveLength(12);
  });
});
