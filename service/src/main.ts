// Production entrypoint (the container's command): settings from the environment,
// serve, drain on SIGTERM.
import { QueuesApp } from "./app.js";
import { settingsFromEnv, SettingsError } from "./config/settings.js";
import { createLogger } from "./logging.js";

async function main(): Promise<void> {
  let settings;
  try {
    settings = settingsFromEnv();
  } catch (error) {
    if (error instanceof SettingsError) {
      console.error(`Queues: configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger(settings.logLevel);
  const app = new QueuesApp({ settings, logger: log });
  await app.start();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      log.info({ signal }, "shutting down");
      void app.shutdown().then(() => process.exit(0));
    });
  }
}

main().catch((error: unknown) => {
  console.error("Queues: failed to start:", error);
  process.exit(1);
});
