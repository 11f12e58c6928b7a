// SQS clients. Endpoint and region come from the SDK's own configuration
// (AWS_ENDPOINT_URL[_SQS], AWS_REGION).
import { SQSClient, type SQSClientConfig } from "@aws-sdk/client-sqs";
import { LONG_POLL_SECONDS } from "./queue-definition.js";

/**
 * Requests go to the resolved endpoint, never to the host inside a queue URL, so
 * emulators whose URLs name unresolvable hosts work the same as real SQS.
 */
const COMMON: SQSClientConfig = { useQueueUrlAsEndpoint: false, maxAttempts: 3 };

export interface SqsClients {
  /** Short timeouts: sends, deletes, visibility changes, attributes. */
  sqs: SQSClient;
  /** Long polls hold a request open for up to 20 s. */
  poll: SQSClient;
}

export function createSqsClients(config: SQSClientConfig = {}): SqsClients {
  return {
    sqs: new SQSClient({ ...COMMON, requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 }, ...config }),
    poll: new SQSClient({
      ...COMMON,
      requestHandler: { connectionTimeout: 2_000, requestTimeout: (LONG_POLL_SECONDS + 10) * 1000 },
      ...config,
    }),
  };
}
