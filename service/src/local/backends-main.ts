// `npm run backends`: DynamoDB Local and the SQS emulator as a process of their own,
// with the table and the channel queues created and the table's stream read (the
// table stream function: owners' Totals, expired tasks), so that servers can be
// killed and restarted against the same data (the chaos harness does exactly that).
// Prints the endpoints as shell exports and, last, one JSON line; Ctrl-C stops it all.
//
//   npm run backends -- [--dynamodb-port 8000] [--sqs-port 4566] [--table queues-tasks] [--queue-prefix queues]
import { parseArgs } from "node:util";
import { ChannelConfigError, parseChannelsJson, type ChannelConfig } from "../config/channels.js";
import { DEFAULTS } from "../config/settings.js";
import { provision, startLocalBackends, useLocalEndpoints } from "./backends.js";
import { channelsFromCdkJson } from "./cdk-channels.js";
import { JavaMissingError } from "./dynamodb-local.js";
import { StreamRunner } from "./stream-runner.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "dynamodb-port": { type: "string" },
      "sqs-port": { type: "string" },
      table: { type: "string", default: process.env.QUEUES_TABLE || DEFAULTS.tableName },
      "queue-prefix": { type: "string", default: process.env.QUEUES_QUEUE_PREFIX || DEFAULTS.queuePrefix },
    },
  });
  const channels: ChannelConfig[] = process.env.QUEUES_CHANNELS
    ? parseChannelsJson(process.env.QUEUES_CHANNELS, "QUEUES_CHANNELS")
    : channelsFromCdkJson();
  const backends = await startLocalBackends({ dynamodbPort: port(values["dynamodb-port"]), sqsPort: port(values["sqs-port"]) });
  let stream: StreamRunner | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: stopping the emulators...`);
    void Promise.resolve(stream?.stop())
      .then(() => backends.stop())
      .then(() => process.exit(0));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  useLocalEndpoints(backends);
  const { queueUrls } = await provision(values.table, values["queue-prefix"], channels);
  stream = await StreamRunner.start({
    tableName: values.table,
    onError: (error) => console.error(`table stream: a batch failed, trying again: ${String(error)}`),
  });
  console.error(
    [
      `DynamoDB Local and the SQS emulator are running (the stream of table ${values.table} is read here); point servers at them with:`,
      `  export AWS_ENDPOINT_URL_DYNAMODB=${backends.dynamodbEndpoint}`,
      `  export AWS_ENDPOINT_URL_SQS=${backends.sqsEndpoint}`,
      "  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local",
      `  export QUEUES_TABLE=${values.table} QUEUES_CHANNELS='${JSON.stringify(channels)}'`,
      `  export QUEUES_QUEUE_URLS='${JSON.stringify(queueUrls)}'`,
      "  npm start",
      "Ctrl-C stops them (their data is in memory).",
    ].join("\n"),
  );
  console.log(
    JSON.stringify({
      dynamodbEndpoint: backends.dynamodbEndpoint,
      sqsEndpoint: backends.sqsEndpoint,
      table: values.table,
      channels,
      queueUrls,
    }),
  );
}

function port(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65_535) throw new ChannelConfigError(`not a port: ${value}`);
  return parsed;
}

main().catch((error: unknown) => {
  if (error instanceof JavaMissingError || error instanceof ChannelConfigError) {
    console.error(`Queues backends: ${error.message}`);
    process.exit(2);
  }
  console.error("Queues backends: failed to start:", error);
  process.exit(1);
});
