// The SQS emulator (npm package fauxqs 1.x), in this process, on a free port.
import { startFauxqs } from "fauxqs";
import type { RunningEmulator } from "./dynamodb-local.js";

export async function startSqsEmulator(port = 0): Promise<RunningEmulator> {
  const server = await startFauxqs({ port, logger: false });
  return { endpoint: server.address, stop: () => server.stop() };
}
