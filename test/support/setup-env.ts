// Points the AWS SDK at the shared emulators through its own variables, exactly as
// a user would (no home-made endpoint settings).
import { inject } from "vitest";

process.env.AWS_ENDPOINT_URL_DYNAMODB = inject("dynamodbEndpoint");
process.env.AWS_ENDPOINT_URL_SQS = inject("sqsEndpoint");
process.env.AWS_REGION = "us-east-1";
process.env.AWS_ACCESS_KEY_ID = "local";
process.env.AWS_SECRET_ACCESS_KEY = "local";
// The SDK's notice that its 2027 releases need Node 22; the tests prove Node 20 works today.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
