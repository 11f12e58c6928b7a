// The composition root: builds the store, the channels, the task service, the
// sweeper, health and the gRPC server from Settings, and runs the graceful
// shutdown of SPEC §4.
import type * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Logger } from "pino";
import type { Settings } from "./config/settings.js";
import type { CoreContext } from "./core/context.js";
import { tagBackendErrors } from "./core/backend-errors.js";
import { Delivery } from "./core/delivery.js";
import { Sweeper } from "./core/sweeper.js";
import { ParkedTasks } from "./core/parked-tasks.js";
import { Scheduler } from "./core/scheduler.js";
import { ScheduleService } from "./core/schedule-service.js";
import { ScheduleStore } from "./store/schedule-store.js";
import { LookAheadLeaseStore } from "./store/look-ahead-lease-store.js";
import { RateBudgetStore } from "./store/rate-budget-store.js";
import { scheduleHandlers } from "./grpc/schedule-handlers.js";
import { TaskService } from "./core/task-service.js";
import type { QueuesHandlers } from "@queues/protocol";
import { BackendHealth } from "./health/backend-health.js";
import { HttpEndpoint } from "./http/http-endpoint.js";
import { WebConsole } from "./console/console.js";
import { ActivityStore } from "./store/activity-store.js";
import { ConsoleAccess } from "./console/session.js";
import { DeadLetters } from "./core/dead-letters.js";
import { receiveHandler } from "./grpc/receive-stream.js";
import { reportHandler } from "./grpc/report-stream.js";
import { bind, createGrpcServer } from "./grpc/server.js";
import { StreamRegistry } from "./grpc/stream-registry.js";
import { unaryHandlers } from "./grpc/unary-handlers.js";
import { Authorizer } from "./auth/authorizer.js";
import { checkScopedChannels } from "./auth/tokens.js";
import { createLogger } from "./logging.js";
import { routeGrpcLogs } from "./grpc/grpc-logger.js";
import { ChannelQueues } from "./queue/channel-queues.js";
import { ChannelRegistry } from "./queue/channel-registry.js";
import { createSqsClients, type SqsClients } from "./queue/sqs-client.js";
import { BackendUsage } from "./metrics/backend-usage.js";
import { TaskMetrics } from "./metrics/task-metrics.js";
import { EmfPublisher } from "./metrics/emf-publisher.js";
import { createDocumentClient } from "./store/dynamo-client.js";
import { TaskStore } from "./store/task-store.js";
import { IdGenerator } from "./tasks/ids.js";

export interface AppOptions {
  settings: Settings;
  logger?: Logger;
  /** Clients may be passed in (tests inject faults through SDK middleware). */
  dynamo?: DynamoDBDocumentClient;
  sqs?: SqsClients;
  /** The server's clock (epoch ms); tests move it to see tasks scheduled far ahead come due. */
  now?: () => number;
}

export class QueuesApp {
  readonly ctx: CoreContext;
  readonly tasks: TaskService;
  readonly sweeper: Sweeper;
  /** Sends the messages of tasks scheduled more than 15 minutes ahead when their RunAt is near. */
  readonly parked: ParkedTasks;
  /** Fires the ticks of recurring schedules. */
  readonly scheduler: Scheduler;
  readonly health: BackendHealth;
  /** The channels' dead-letter queues: depth, a peek, the redrive (the console's). */
  readonly deadLetters: DeadLetters;
  readonly streams = new StreamRegistry();
  /** DynamoDB capacity and SQS requests used since start (GET /usage on the health HTTP port). */
  readonly usage = new BackendUsage();
  /** The Prometheus metrics served at GET /metrics. */
  readonly metrics: TaskMetrics;
  /** With QUEUES_EMF_NAMESPACE: the same numbers as CloudWatch Embedded Metric Format lines on stdout. */
  readonly emf: EmfPublisher | undefined;
  /** The port of GET /healthz once started (undefined when it is not served). */
  httpPort: number | undefined;
  private readonly server: grpc.Server;
  private readonly http: HttpEndpoint | undefined;
  private readonly log: Logger;
  private readonly channels: ChannelRegistry;
  private shuttingDown: Promise<void> | undefined;

  constructor(private readonly options: AppOptions) {
    const { settings } = options;
    // settingsFromEnv checks this too; settings may also be built in code (tests, tools).
    if (settings.authTokens) checkScopedChannels(settings.authTokens, settings.channels.map((channel) => channel.name));
    this.log = options.logger ?? createLogger(settings.logLevel);
    routeGrpcLogs(this.log);
    const dynamo = options.dynamo ?? createDocumentClient();
    const sqs = options.sqs ?? createSqsClients();
    tagBackendErrors(dynamo, "DynamoDB");
    tagBackendErrors(sqs.sqs, "SQS");
    tagBackendErrors(sqs.poll, "SQS");
    this.usage.attachDynamoDb(dynamo);
    this.usage.attachSqs(sqs.sqs);
    this.usage.attachSqs(sqs.poll);
    const now = options.now ?? Date.now;
    const store = new TaskStore(dynamo, settings.tableName, { retentionDays: settings.taskRetentionDays, now });
    const queues = new ChannelQueues(sqs, settings.channels, settings.queueUrls, settings.queuePrefix);
    this.metrics = new TaskMetrics({
      channels: () => [...queues.names],
      queueCounts: (channel) => queues.get(channel).counts(),
      openWorkerStreams: () => this.streams.size,
      creditsWaiting: (channel) => this.channels.creditsWaiting(channel),
    });
    this.emf = settings.emfNamespace
      ? new EmfPublisher(this.metrics.registry, { namespace: settings.emfNamespace, intervalMs: settings.emfIntervalMs, channels: () => [...queues.names], log: this.log })
      : undefined;
    this.ctx = {
      store,
      channels: queues,
      ids: new IdGenerator(),
      retry: { baseMs: settings.retryBaseMs, maxMs: settings.retryMaxMs },
      sweepAfterMs: settings.sweepAfterMs,
      holdBackMaxSeconds: settings.holdBackMaxSeconds,
      log: this.log,
      now,
      events: this.metrics,
    };
    const channels = new ChannelRegistry(queues, new Delivery(this.ctx), this.log, { budgets: new RateBudgetStore(dynamo, settings.tableName), now });
    this.channels = channels;
    this.tasks = new TaskService(this.ctx);
    this.deadLetters = new DeadLetters(this.ctx, (channel) => queues.get(channel).deadLetters);
    this.sweeper = new Sweeper(this.ctx, settings.sweepIntervalMs);
    this.parked = new ParkedTasks(this.ctx, new LookAheadLeaseStore(dynamo, settings.tableName), randomUUID(), settings.parkedScanIntervalMs);
    const schedules = new ScheduleStore(dynamo, settings.tableName);
    const scheduleService = new ScheduleService(this.ctx, schedules);
    this.scheduler = new Scheduler(this.ctx, schedules, this.tasks, settings.scheduleIntervalMs);
    // Both backends answer: the table exists, and the channel queues exist.
    this.health = new BackendHealth([store, queues], settings.healthIntervalMs, this.log);
    const handlers: QueuesHandlers = {
      ...unaryHandlers(this.tasks, channels, now),
      ...scheduleHandlers(scheduleService, channels),
      ReceiveQueueByChannel: receiveHandler(channels, this.streams, settings.maxCreditsPerStream),
      ReportTaskResult: reportHandler(this.ctx, this.streams),
    };
    // Request ids, authentication and refusing new streams while draining are the server's interceptors.
    const policy = {
      log: this.log,
      authorizer: settings.authTokens ? new Authorizer(settings.authTokens) : undefined,
      drain: this.streams,
      reflection: settings.reflection,
    };
    this.server = createGrpcServer(handlers, this.health, policy, {
      maxMessageBytes: settings.maxMessageBytes,
      maxConcurrentStreams: settings.maxConcurrentStreams,
      firstMessageTimeoutMs: settings.firstMessageTimeoutMs,
      connectionIdleMs: settings.connectionIdleMs,
      connectionAgeGraceMs: settings.connectionAgeGraceMs,
    });
    if (settings.httpPort !== undefined) {
      const activity = new ActivityStore(dynamo, settings.tableName);
      const webConsole = new WebConsole({
        channels: settings.channels,
        tasks: this.tasks,
        schedules: scheduleService,
        queueCounts: (channel) => queues.get(channel).counts(),
        deadLetters: this.deadLetters,
        activity: (channels, nowMs) => activity.lastHour(channels, nowMs),
        access: new ConsoleAccess(policy.authorizer),
        log: this.log.child({ component: "console" }),
        now,
      });
      this.http = new HttpEndpoint(this.health, this.usage, this.metrics, policy.authorizer, webConsole);
    }
  }

  /** Binds the port and starts health checks and the sweeper; returns the bound port. */
  async start(): Promise<number> {
    const { settings } = this.options;
    const port = await bind(this.server, settings.host, settings.port);
    if (this.http && settings.httpPort !== undefined) {
      this.httpPort = await this.http.listen(settings.host, settings.httpPort);
    }
    this.health.start();
    this.sweeper.start();
    this.parked.start();
    this.scheduler.start();
    this.emf?.start();
    if (!settings.authTokens) {
      this.log.warn("authentication is off: no QUEUES_AUTH_TOKENS or QUEUES_AUTH_TOKENS_FILE, so any client can call every RPC");
    }
    this.log.info(
      {
        host: settings.host,
        port,
        httpPort: this.httpPort,
        auth: settings.authTokens ? `${settings.authTokens.length} token(s), ${settings.authTokens.filter((token) => token.scope).length} scoped` : "off",
        table: settings.tableName,
        channels: settings.channels.map((channel) => channel.name),
      },
      "Queues server listening",
    );
    return port;
  }

  /**
   * Graceful shutdown (SIGTERM): health goes NOT_SERVING, no new calls, pollers stop
   * and release the messages nobody received, streams end with UNAVAILABLE after
   * their in-flight reports are written, unary calls finish; all within drainTimeoutMs.
   * The long polls in flight (up to 20 s) are waited for, so that a message they bring
   * back is released at once; `abandonLongPolls` ends them at once instead (a message
   * SQS hands out in that instant then stays hidden until its visibility timeout): for
   * servers whose queues are thrown away with them, such as tests'.
   */
  shutdown(options: { abandonLongPolls?: boolean } = {}): Promise<void> {
    this.shuttingDown ??= this.drain(options.abandonLongPolls === true);
    return this.shuttingDown;
  }

  private async drain(abandonLongPolls: boolean): Promise<void> {
    const started = Date.now();
    this.log.info("draining");
    this.health.markDraining();
    this.streams.draining = true;
    const closed = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    const pollers = this.channels.activePollers();
    const work = (async () => {
      // Pollers stop taking credits at once; their long polls in flight (up to 20 s)
      // finish in the background and release whatever they bring back.
      const pollersStopped = Promise.all(pollers.map((poller) => poller.stop()));
      if (abandonLongPolls) for (const poller of pollers) poller.abortPolls();
      await this.streams.shutdownAll();
      await Promise.all([pollersStopped, this.sweeper.stop(), this.parked.stop(), this.scheduler.stop(), closed]);
    })();
    const timedOut = await Promise.race([
      work.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), this.options.settings.drainTimeoutMs).unref()),
    ]);
    if (timedOut) {
      this.log.warn("drain timeout reached; abandoning long polls and closing the remaining calls");
      for (const poller of pollers) poller.abortPolls();
      this.server.forceShutdown();
    }
    // After the streams' last reports: the final EMF lines count them.
    await this.emf?.stop();
    // Last: a load balancer keeps seeing 503 on /healthz while the drain runs.
    await this.http?.close();
    this.log.info({ ms: Date.now() - started }, "stopped");
  }
}
