// The Worker SDK against a real server on the emulators: concurrency, results,
// heartbeats, cancellation, draining, reconnects across a server restart, and a
// network partition (fencing keeps the stale worker's result out).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LeaseLostError, NonRetryableError, QueuesClient, Worker, type Task, type WorkerOptions } from "@queues/client";
import { freePort } from "../service/src/local/free-port.js";
import { eventually, queueDrained, sleep, startTestServer, type TestServer } from "./support/harness.js";
import { TcpProxy } from "./support/tcp-proxy.js";
import { requireBuild } from "./harness/build.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Channels with a 30 s lease. */
const LONG_LEASE = ["basic", "concurrency", "results", "drain", "overrun", "restart", "oversize", "listener", "stubborn"];
/** Channels with a 2 s lease: heartbeats and lease loss happen within a test. */
const SHORT_LEASE = ["heartbeat", "cancel", "partition"];

let server: TestServer;
let client: QueuesClient;
const workers: Worker[] = [];

beforeAll(async () => {
  server = await startTestServer({
    channels: [{ name: "default" }, ...LONG_LEASE, ...SHORT_LEASE.map((name) => ({ name, visibilityTimeoutSeconds: 2 }))],
    settings: { port: await freePort() },
  });
  client = new QueuesClient({ address: server.address });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
});

afterAll(async () => {
  client?.close();
  await server?.stop();
});

function startWorker(options: Partial<WorkerOptions> & Pick<WorkerOptions, "channel" | "handler">): Worker {
  const worker = new Worker({ address: server.address, drainTimeoutMs: 5_000, ...options });
  workers.push(worker);
  void worker.run().catch(() => {});
  return worker;
}

async function create(channel: string, input = "", extra: { retryMaxLimit?: number; owner?: bigint } = {}): Promise<Task> {
  const hashCode = await client.createTask({ channel, input, ...extra });
  return client.getTaskByHashCode(hashCode);
}

const settle = (worker: Worker, event: "taskSucceeded" | "taskFailed" | "taskCancelled" | "leaseLost") =>
  new Promise<Task>((resolve) => worker.once(event, (task: Task) => resolve(task)));

describe("Worker", () => {
  it("runs the handler for a task and reports its return value as the SUCCESS Output", async () => {
    const seen: string[] = [];
    const worker = startWorker({
      channel: "basic",
      handler: async (task, { attempt }) => {
        seen.push(`${task.Input}#${attempt}`);
        return task.Input.toUpperCase();
      },
    });
    const started = new Promise<Task>((resolve) => worker.once("taskStarted", resolve));
    const succeeded = settle(worker, "taskSucceeded");
    const task = await create("basic", "hello");
    expect((await started).ID).toBe(task.ID);
    expect((await succeeded).ID).toBe(task.ID);
    expect(seen).toEqual(["hello#1"]);
    expect(await client.getTask(task.ID)).toMatchObject({ State: "SUCCESS", Output: "HELLO", RetryCount: "0" });
  });

  it("never runs more than `concurrency` handlers at once, and keeps all of them busy", async () => {
    // Handlers are held on gates, so the test waits for what it checks (5 running) instead of
    // hoping that short sleeps overlap, however slow each call is.
    const TASKS = 12;
    let running = 0;
    let most = 0;
    let started = 0;
    let done = 0;
    let open = false;
    const gates: (() => void)[] = [];
    const worker = startWorker({
      channel: "concurrency",
      concurrency: 5,
      handler: async () => {
        running += 1;
        started += 1;
        most = Math.max(most, running);
        if (!open) await new Promise<void>((resolve) => gates.push(resolve));
        running -= 1;
        done += 1;
        return "ok";
      },
    });
    await Promise.all(Array.from({ length: TASKS }, (_, i) => create("concurrency", `t${i}`)));
    // All 5 slots fill while every handler is held...
    await eventually(() => running === 5, 60_000);
    // ...and no sixth starts meanwhile (a wait cannot make this fail wrongly, only a sixth credit can).
    await sleep(1_000);
    expect(started).toBe(5);
    // A finished handler's slot goes to the next task: 5 busy again.
    gates.shift()?.();
    await eventually(() => started === 6 && running === 5, 60_000);
    open = true;
    for (const release of gates.splice(0)) release();
    await eventually(() => done === TASKS, 60_000);
    expect(most).toBe(5);
    await eventually(() => worker.active === 0, 10_000);
    await queueDrained(server, "concurrency");
  });

  it("a throw is a FAILURE the server retries; a NonRetryableError is a CANCEL", async () => {
    const worker = startWorker({
      channel: "results",
      concurrency: 2,
      handler: async (task, { attempt }) => {
        if (task.Input === "flaky" && attempt === 1) throw new Error("first try breaks");
        if (task.Input === "hopeless") throw new NonRetryableError("cannot ever work");
        return `ok on attempt ${attempt}`;
      },
    });
    const failed = settle(worker, "taskFailed");
    const cancelled = settle(worker, "taskCancelled");
    const flaky = await create("results", "flaky");
    const hopeless = await create("results", "hopeless");
    expect((await failed).ID).toBe(flaky.ID);
    expect((await cancelled).ID).toBe(hopeless.ID);
    await eventually(async () => (await client.getTask(flaky.ID)).State === "SUCCESS", 15_000);
    expect(await client.getTask(flaky.ID)).toMatchObject({ Output: "ok on attempt 2", RetryCount: "1" });
    expect(await client.getTask(hopeless.ID)).toMatchObject({ State: "CANCEL", Output: "cannot ever work", RetryCount: "0" });
  });

  it("heartbeats keep a task past its visibility timeout (a 5 s handler on a 2 s lease runs once)", async () => {
    let calls = 0;
    const worker = startWorker({
      channel: "heartbeat",
      handler: async (_task, { signal }) => {
        calls += 1;
        await sleep(5_000);
        if (signal.aborted) throw new Error("aborted");
        return "long done";
      },
    });
    const succeeded = settle(worker, "taskSucceeded");
    const task = await create("heartbeat", "long");
    await succeeded;
    expect(calls).toBe(1);
    expect(await client.getTask(task.ID)).toMatchObject({ State: "SUCCESS", Output: "long done", RetryCount: "0" });
  });

  it("a cancel aborts the running handler's signal (the next heartbeat learns it) and nothing is reported after", async () => {
    let reason: unknown;
    const worker = startWorker({
      channel: "cancel",
      handler: (_task, { signal }) =>
        new Promise<string>((_, reject) => {
          signal.addEventListener("abort", () => {
            reason = signal.reason;
            reject(signal.reason as Error);
          });
        }),
    });
    const started = new Promise<Task>((resolve) => worker.once("taskStarted", resolve));
    const lost = settle(worker, "leaseLost");
    const task = await create("cancel", "cancel me");
    await started;
    expect((await client.cancelTask(task.ID)).map((t) => t.ID)).toEqual([task.ID]);
    expect((await lost).ID).toBe(task.ID);
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect((reason as Error).message).toMatch(/cancel/i);
    // The handler is done; give a wrongly sent report time to land (it can only make this pass wrongly, never fail).
    await eventually(() => worker.active === 0, 10_000);
    await sleep(1_000);
    expect(await client.getTask(task.ID)).toMatchObject({ State: "CANCEL", Output: "" });
  });

  it("close() drains: takes no new task, lets running handlers finish and their results be acknowledged", async () => {
    let finished = 0;
    const worker = new Worker({
      address: server.address,
      channel: "drain",
      concurrency: 3,
      handler: async () => {
        await sleep(800);
        finished += 1;
        return "drained";
      },
    });
    const run = worker.run();
    const started: Task[] = [];
    worker.on("taskStarted", (task) => started.push(task));
    const tasks = await Promise.all([create("drain", "a"), create("drain", "b"), create("drain", "c")]);
    await eventually(() => started.length === 3, 10_000);
    await worker.close();
    await run;
    expect(finished).toBe(3);
    for (const task of tasks) expect(await client.getTask(task.ID)).toMatchObject({ State: "SUCCESS", Output: "drained" });
    // Closed: a new task is not taken.
    const later = await create("drain", "after close");
    await sleep(1_000);
    expect((await client.getTask(later.ID)).State).toBe("WAITING");
  });

  it("close() aborts handlers that overrun the drain timeout and reports their attempt failed", async () => {
    const worker = new Worker({
      address: server.address,
      channel: "overrun",
      drainTimeoutMs: 300,
      handler: (_task, { signal }) => new Promise<string>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error))),
    });
    const run = worker.run();
    const started = new Promise<Task>((resolve) => worker.once("taskStarted", resolve));
    const task = await create("overrun", "too slow", { retryMaxLimit: 5 });
    await started;
    const closing = Date.now();
    await worker.close();
    await run;
    // Bounded by the 300 ms drain timeout plus one report, not by the handler (which never ends)
    // nor the 30 s default: 10 s leaves room for calls 3x slower on a loaded machine.
    expect(Date.now() - closing).toBeLessThan(10_000);
    expect(await client.getTask(task.ID)).toMatchObject({ State: "WAITING", RetryCount: "1", Output: "the worker is closing" });
  });

  it("an Output over 256 KiB fails its attempt with a readable message and blocks nothing else", async () => {
    const worker = startWorker({
      channel: "oversize",
      concurrency: 2,
      handler: async (task) => (task.Input === "big" ? "x".repeat(300_000) : "small"),
    });
    const failed = settle(worker, "taskFailed");
    const big = await create("oversize", "big", { retryMaxLimit: 1 });
    const small = await create("oversize", "small");
    expect((await failed).ID).toBe(big.ID);
    await eventually(async () => (await client.getTask(small.ID)).State === "SUCCESS", 10_000);
    await eventually(async () => (await client.getTask(big.ID)).State === "FAILURE", 15_000);
    expect((await client.getTask(big.ID)).Output).toBe("the handler returned 300000 bytes; the Output limit is 262144");
  });

  it("a listener that throws does not stop the worker (it becomes an error event)", async () => {
    const errors: Error[] = [];
    const worker = startWorker({ channel: "listener", handler: async () => "fine" });
    worker.on("taskStarted", () => {
      throw new Error("a buggy listener");
    });
    worker.on("error", (error) => errors.push(error));
    const first = await create("listener", "one");
    const second = await create("listener", "two");
    await eventually(async () => (await client.getTask(second.ID)).State === "SUCCESS", 10_000);
    expect((await client.getTask(first.ID)).State).toBe("SUCCESS");
    expect(errors.map((e) => e.message)).toContain("a buggy listener");
  });

  it("after close(), a handler that ignores its signal does not keep the process alive", async () => {
    // The child imports "@queues/client", i.e. the compiled client/dist.
    requireBuild("this test");
    const task = await create("stubborn", "never ends", { retryMaxLimit: 5 });
    const script = `
      const { Worker } = await import("@queues/client");
      const worker = new Worker({ address: ${JSON.stringify(server.address)}, channel: "stubborn", drainTimeoutMs: 300,
        handler: () => new Promise(() => {}) });
      worker.once("taskStarted", () => setTimeout(() => worker.close().then(() => console.log("closed")), 200));
      await worker.run();
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve(-1);
      }, 15_000);
      child.on("exit", (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(code).toBe(0);
    expect(out).toContain("closed");
    // Its lease will run out (counted as a failed attempt); nothing was reported for it.
    expect(await client.getTask(task.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "0" });
  });

  it("rejects run() for a channel the server does not have", async () => {
    const worker = new Worker({ address: server.address, channel: "no-such-channel", handler: () => "never" });
    await expect(worker.run()).rejects.toMatchObject({ code: 3 });
  });
});

describe("Worker across a server restart", () => {
  it("1,000 tasks with concurrency 8, the server restarted midway: every task SUCCESS, each acknowledged exactly once", async () => {
    const TASKS = 1_000;
    const acknowledged = new Map<string, number>();
    let handled = 0;
    const worker = startWorker({
      channel: "restart",
      concurrency: 8,
      reconnect: { initialMs: 100, maxMs: 1_000 },
      handler: async (task) => {
        handled += 1;
        await sleep(2);
        return `done ${task.Input}`;
      },
    });
    worker.on("taskSucceeded", (task) => acknowledged.set(task.ID, (acknowledged.get(task.ID) ?? 0) + 1));
    const reconnects: string[] = [];
    worker.on("reconnecting", ({ stream }) => reconnects.push(stream));

    const ids: string[] = [];
    for (let batch = 0; batch < TASKS; batch += 50) {
      const created = await Promise.all(Array.from({ length: 50 }, (_, i) => client.createTask({ channel: "restart", input: String(batch + i) })));
      ids.push(...created);
    }
    // Midway: the server goes away (graceful, as ECS stops it) and a new one takes its port.
    // The deadlines are about 3x what a loaded 2-core machine needs (~15 s and ~30 s).
    await eventually(() => acknowledged.size >= TASKS / 3, 120_000);
    const port = Number(server.address.split(":")[1]);
    // As SIGTERM drains it: the long polls in flight are waited for and what they bring back is
    // released (abandoned, those messages would stay hidden for the 30 s visibility timeout).
    await server.stop({ waitForLongPolls: true });
    await sleep(500);
    server = await startTestServer({ replicaOf: server, settings: { port } });
    await eventually(() => acknowledged.size === TASKS, 240_000, 250);

    expect(reconnects).toContain("receive");
    expect([...acknowledged.values()].every((count) => count === 1)).toBe(true);
    // Read back 25 at a time: 1,000 reads at once would time out on a loaded emulator, not in the server.
    const page: Task[] = [];
    for (let start = 0; start < ids.length; start += 25) {
      page.push(...(await Promise.all(ids.slice(start, start + 25).map((hashCode) => client.getTaskByHashCode(hashCode)))));
    }
    expect(page.filter((task) => task.State === "SUCCESS")).toHaveLength(TASKS);
    expect(handled).toBeGreaterThanOrEqual(TASKS);
    await queueDrained(server, "restart");
  }, 420_000);
});

describe("Worker behind a network partition", () => {
  it("a worker cut off past its lease loses the task to another; its late result is refused (fencing), one SUCCESS", async () => {
    const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(server.address.split(":")[1]) });
    const proxied = await proxy.listen();
    try {
      let releaseFirst!: () => void;
      const firstMayFinish = new Promise<void>((resolve) => (releaseFirst = resolve));
      const cutOff = new Worker({
        address: proxied,
        channel: "partition",
        handler: async () => {
          await firstMayFinish;
          return "from the cut-off worker";
        },
      });
      workers.push(cutOff);
      void cutOff.run().catch(() => {});
      const started = new Promise<Task>((resolve) => cutOff.once("taskStarted", resolve));
      const lost = settle(cutOff, "leaseLost");
      let cutOffSucceeded = 0;
      cutOff.on("taskSucceeded", () => (cutOffSucceeded += 1));

      const task = await create("partition", "contested");
      await started;
      proxy.partition();
      // The 2 s lease runs out unheard; a second worker gets the task (attempt 2) and finishes it.
      const other = startWorker({ channel: "partition", handler: async () => "from the other worker" });
      const otherDone = settle(other, "taskSucceeded");
      expect((await otherDone).ID).toBe(task.ID);
      proxy.heal();
      releaseFirst();
      expect((await lost).ID).toBe(task.ID);
      await sleep(500);
      expect(cutOffSucceeded).toBe(0);
      expect(await client.getTask(task.ID)).toMatchObject({ State: "SUCCESS", Output: "from the other worker", RetryCount: "1" });
    } finally {
      await proxy.close();
    }
  });
});
