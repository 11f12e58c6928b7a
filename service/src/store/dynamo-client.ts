// The DynamoDB document client the store uses. Endpoint and region come from the
// SDK's own configuration (AWS_ENDPOINT_URL[_DYNAMODB], AWS_REGION).
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/** Short timeouts so a dead backend turns into a quick 503, not a hung call. */
export const DYNAMODB_CLIENT_DEFAULTS: DynamoDBClientConfig = {
  maxAttempts: 3,
  requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 },
};

export function createDocumentClient(config: DynamoDBClientConfig = {}): DynamoDBDocumentClient {
  const client = new DynamoDBClient({ ...DYNAMODB_CLIENT_DEFAULTS, ...config });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
    // Every number comes back as bigint: IDs and owners above 2^53 stay exact.
    unmarshallOptions: { wrapNumbers: (value: string) => BigInt(value) },
  });
}
