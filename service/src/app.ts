// The composition root: builds the store, the channels, the task service, the
// sweeper, health and the gRPC server from Settings, and runs the graceful
// shutdown of SPEC §4.
import type * as grpc from "@grpc/grpc-js";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { Logger } from "pino";
import type { Settings } from "./config/settings.js";
import type { CoreContext } from "./core/context.js";
import { tagBackendErrors } from "./core/backend-errors.js";
import { Delivery } from "./core/delivery.js";
import { Sweeper } from "./core/sweeper.js";
import { TaskService } from "./core/task-service.js";
import type { QueuesHandlers } from "@queues/protocol";
import { BackendHealth } from "./health/backend-health.js";
import { HealthHttpEndpoint } from "./health/http-endpoint.js";
import { receiveHandler } from "./grpc/receive-stream.js";
import { reportHandler } from "./grpc/report-stream.js";
import { bind, createGrpcServer } from "./grpc/server.js";
import { StreamRegistry } from "./grpc/stream-registry.js";
import { unaryHandlers } from "./grpc/unary-handlers.js";
import { Authorizer } from "./auth/authorizer.js";
import { guardHandlers } from "./auth/guard.js";
import { createLogger } from "./logging.js";
import { ChannelRegistry } from "./queue/channel-registry.js";
import { createSqsClients, type SqsClients } from "./queue/sqs-client.js";
import { BackendUsage } from "./metrics/backend-usage.js";
import { createDocumentClient } from "./store/dynamo-client.js";
import { TaskStore } from "./store/task-store.js";
import { IdGenerator } from "./tasks/ids.js";

export interface AppOptions {
  settings: Settings;
  logger?: Logger;
  /** Clients may be passed in (tests inject faults through SDK middleware). */
  dynamo?: DynamoDBDocumentClient;
  sqs?: SqsClients;
}

export class QueuesApp {
  readonly ctx: CoreContext;
  readonly tasks: TaskService;
  readonly sweeper: Sweeper;
  readonly health: BackendHealth;
  readonly streams = new StreamRegistry();
  /** DynamoDB capacity and SQS requests used since start (GET /usage on the health HTTP port). */
  readonly usage = new BackendUsage();
  /** The port of GET /healthz once started (undefined when it is not served). */
  healthHttpPort: number | undefined;
  private readonly server: grpc.Server;
  private readonly healthHttp: HealthHttpEndpoint | undefined;
  private readonly log: Logger;
  private readonly dynamo: DynamoDBDocumentClient;
  private readonly sqs: SqsClients;
  private shuttingDown: Promise<void> | undefined;
  private probes = 0;

  constructor(private readonly options: AppOptions) {
    const { settings } = options;
    this.log = options.logger ?? createLogger(settings.logLevel);
    this.dynamo = options.dynamo ?? createDocumentClient();
    this.sqs = options.sqs ?? createSqsClients();
    tagBackendErrors(this.dynamo, "DynamoDB");
    tagBackendErrors(this.sqs.sqs, "SQS");
    tagBackendErrors(this.sqs.poll, "SQS");
    this.usage.attachDynamoDb(this.dynamo);
    this.usage.attachSqs(this.sqs.sqs);
    this.usage.attachSqs(this.sqs.poll);
    const channels = new ChannelRegistry(this.sqs, settings.channels, settings.queueUrls, settings.queuePrefix, this.log);
    this.ctx = {
      store: new TaskStore(this.dynamo, settings.tableName, { retentionDays: settings.taskRetentionDays }),
      channels,
      ids: new IdGenerator(),
      retry: { baseMs: settings.retryBaseMs, maxMs: settings.retryMaxMs },
      sweepAfterMs: settings.sweepAfterMs,
      log: this.log,
      now: Date.now,
    };
    channels.setDeliveryHandler(new Delivery(this.ctx));
    this.tasks = new TaskService(this.ctx);
    this.sweeper = new Sweeper(this.ctx, settings.sweepIntervalMs);
    this.health = new BackendHealth(() => this.probeBackends(), settings.healthIntervalMs, this.log);
    const handlers: QueuesHandlers = {
      ...unaryHandlers(this.tasks, channels, this.log),
      ReceiveQueueByChannel: receiveHandler(channels, this.streams, settings.maxCreditsPerStream, this.log),
      ReportTaskResult: reportHandler(this.ctx, this.streams, this.log),
    };
    const guarded = settings.authTokens ? guardHandlers(handlers, new Authorizer(settings.authTokens)) : handlers;
    this.server = createGrpcServer(guarded, this.health, {
      maxMessageBytes: settings.maxMessageBytes,
      maxConcurrentStreams: settings.maxConcurrentStreams,
    });
    if (settings.healthHttpPort !== undefined) this.healthHttp = new HealthHttpEndpoint(this.health, this.usage);
  }

  /** Binds the port and starts health checks and the sweeper; returns the bound port. */
  async start(): Promise<number> {
    const { settings } = this.options;
    const port = await bind(this.server, settings.host, settings.port);
    if (this.healthHttp && settings.healthHttpPort !== undefined) {
      this.healthHttpPort = await this.healthHttp.listen(settings.host, settings.healthHttpPort);
    }
    this.health.start();
    this.sweeper.start();
    if (!settings.authTokens) {
      this.log.warn("authentication is off: no QUEUES_AUTH_TOKENS or QUEUES_AUTH_TOKENS_FILE, so any client can call every RPC");
    }
    this.log.info(
      {
        host: settings.host,
        port,
        healthHttpPort: this.healthHttpPort,
        auth: settings.authTokens ? `${settings.authTokens.length} token(s)` : "off",
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
   */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.drain();
    return this.shuttingDown;
  }

  private async drain(): Promise<void> {
    const started = Date.now();
    this.log.info("draining");
    this.health.markDraining();
    this.streams.draining = true;
    const closed = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    const pollers = this.ctx.channels.activePollers();
    const work = (async () => {
      // Pollers stop taking credits at once; their long polls in flight (up to 20 s)
      // finish in the background and release whatever they bring back.
      const pollersStopped = Promise.all(pollers.map((poller) => poller.stop()));
      await this.streams.shutdownAll();
      await Promise.all([pollersStopped, this.sweeper.stop(), closed]);
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
    // Last: a load balancer keeps seeing 503 on /healthz while the drain runs.
    await this.healthHttp?.close();
    this.log.info({ ms: Date.now() - started }, "stopped");
  }

  /**
   * Both backends answer: the table exists and the channel queues exist. Until the
   * server is SERVING every queue is checked; after that one per probe, in turn,
   * because SQS bills GetQueueAttributes like any request (DescribeTable is free).
   */
  private async probeBackends(): Promise<void> {
    const queues = this.ctx.channels.all();
    const checked = this.health.serving ? [queues[this.probes++ % queues.length] as (typeof queues)[number]] : queues;
    await Promise.all([
      this.dynamo.send(new DescribeTableCommand({ TableName: this.options.settings.tableName })),
      ...checked.map(async (queue) => this.sqs.sqs.send(new GetQueueAttributesCommand({ QueueUrl: await queue.url(), AttributeNames: ["QueueArn"] }))),
    ]);
  }
}
