// The channel list of cdk.json (context.channels): what `npm run dev` provisions
// locally, the same list the CDK stack deploys.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { type ChannelConfig, parseChannels } from "../config/channels.js";

export function cdkJsonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "cdk.json"))) return join(dir, "cdk.json");
    dir = dirname(dir);
  }
  throw new Error("cdk.json not found");
}

export function channelsFromCdkJson(path = cdkJsonPath()): ChannelConfig[] {
  const json = JSON.parse(readFileSync(path, "utf8")) as { context?: { channels?: unknown } };
  return parseChannels(json.context?.channels, `${path} context.channels`);
}
