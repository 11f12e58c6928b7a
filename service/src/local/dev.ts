// `npm run dev`: the whole service on this machine with no AWS account. Starts
// DynamoDB Local and the SQS emulator on free ports (or, when AWS_ENDPOINT_URL*
// is set, uses that endpoint, e.g. LocalStack), creates the table and the channel
// queues of cdk.json, reads the table's stream (the table stream function that the
// Lambda is on AWS: owners' Totals, expired tasks), and serves gRPC on
// 127.0.0.1:50051 (PORT overrides) and the HTTP port (the console at `/`, /healthz,
// /metrics, /usage) on 127.0.0.1:8080 (HTTP_PORT overrides). Ctrl-C stops everything.
import { QueuesApp } from "../app.js";
import { DEFAULTS, settingsFromEnv, SettingsError } from "../config/settings.js";
import { ChannelConfigError, parseChannelsJson, type ChannelConfig } from "../config/channels.js";
import { createLogger } from "../logging.js";
import { JavaMissingError } from "./dynamodb-local.js";
import { provision, startLocalBackends, useLocalCredentials, useLocalEndpoints, type LocalBackends } from "./backends.js";
import { channelsFromCdkJson } from "./cdk-channels.js";
import { StreamRunner } from "./stream-runner.js";

/** The HTTP port of `npm run dev` (the console), unless HTTP_PORT says otherwise. */
const DEV_HTTP_PORT = 8080;

async function main(): Promise<void> {
  const env = process.env;
  const channels: ChannelConfig[] = env.QUEUES_CHANNELS
    ? parseChannelsJson(env.QUEUES_CHANNELS, "QUEUES_CHANNELS")
    : channelsFromCdkJson();
  const external = Boolean(env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT_URL_DYNAMODB || env.AWS_ENDPOINT_URL_SQS);

  let backends: LocalBackends | undefined;
  if (external) {
    useLocalCredentials(env);
    console.error(`Using the endpoints in AWS_ENDPOINT_URL* (${env.AWS_ENDPOINT_URL ?? `${env.AWS_ENDPOINT_URL_DYNAMODB ?? "AWS"} / ${env.AWS_ENDPOINT_URL_SQS ?? "AWS"}`})`);
  } else {
    console.error("Starting DynamoDB Local and the SQS emulator...");
    backends = await startLocalBackends();
    useLocalEndpoints(backends, env);
  }
  let stream: StreamRunner | undefined;
  const stopBackends = async () => {
    await stream?.stop();
    await backends?.stop();
  };

  try {
    const tableName = env.QUEUES_TABLE || DEFAULTS.tableName;
    const queuePrefix = env.QUEUES_QUEUE_PREFIX || DEFAULTS.queuePrefix;
    const { queueUrls } = await provision(tableName, queuePrefix, channels);
    const settings = settingsFromEnv({
      ...env,
      HOST: env.HOST || "127.0.0.1",
      PORT: env.PORT || String(DEFAULTS.port),
      QUEUES_CHANNELS: JSON.stringify(channels),
      QUEUES_QUEUE_URLS: JSON.stringify(queueUrls),
      QUEUES_DRAIN_TIMEOUT_MS: env.QUEUES_DRAIN_TIMEOUT_MS || "5000",
      // The HTTP port: HTTP_PORT, unless QUEUES_HTTP_PORT (or its old name) sets it.
      ...(env.QUEUES_HTTP_PORT || env.QUEUES_HEALTH_HTTP_PORT ? {} : { QUEUES_HTTP_PORT: env.HTTP_PORT || String(DEV_HTTP_PORT) }),
    });
    const logger = createLogger(settings.logLevel);
    stream = await StreamRunner.start({ tableName, onError: (error) => logger.warn({ err: error }, "table stream: a batch failed; trying again") });
    const app = new QueuesApp({ settings, logger });
    const port = await app.start();
    await app.health.check();
    console.error(
      [
        "",
        `Queues is serving on ${settings.host}:${port} (health: ${app.health.serving ? "SERVING" : "NOT_SERVING"})`,
        `  DynamoDB: ${env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL}  table ${tableName} (its stream is read here: owners' Totals)`,
        `  SQS:      ${env.AWS_ENDPOINT_URL_SQS ?? env.AWS_ENDPOINT_URL}  channels ${channels.map((c) => c.name).join(", ")}`,
        `  Console:  http://${settings.host}:${app.httpPort}/  (also /healthz, /metrics, /usage)`,
        `  Try: grpcurl -plaintext ${settings.host}:${port} list`,
        "Ctrl-C stops the server and the emulators.",
        "",
      ].join("\n"),
    );
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        console.error("Forced exit.");
        void stopBackends().finally(() => process.exit(1));
        return;
      }
      stopping = true;
      console.error(`\n${signal}: stopping...`);
      void app
        .shutdown()
        .then(stopBackends)
        .then(() => process.exit(0));
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  } catch (error) {
    await stopBackends();
    throw error;
  }
}

main().catch((error: unknown) => {
  if (error instanceof JavaMissingError || error instanceof SettingsError || error instanceof ChannelConfigError) {
    console.error(`Queues dev: ${error.message}`);
    process.exit(2);
  }
  console.error("Queues dev: failed to start:", error);
  process.exit(1);
});
