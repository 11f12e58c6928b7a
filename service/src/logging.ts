// Structured JSON logs (pino). Payloads (Input/Output) and tokens are never logged.
// Every line written while a request is being served carries its request id, also
// the lines of the task service deep below the handler (an AsyncLocalStorage scope).
import { AsyncLocalStorage } from "node:async_hooks";
import { pino, type DestinationStream, type Logger } from "pino";

export const requestScope = new AsyncLocalStorage<{ requestId: string }>();

/** `destination`: stdout unless given (tests read the lines). */
export function createLogger(level = "info", destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "queues" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: () => {
      const scope = requestScope.getStore();
      return scope ? { requestId: scope.requestId } : {};
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
