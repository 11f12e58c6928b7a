// Structured JSON logs (pino). Payloads (Input/Output) are never logged.
import { pino, type Logger } from "pino";

export function createLogger(level = "info"): Logger {
  return pino({
    level,
    base: { service: "queues" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
