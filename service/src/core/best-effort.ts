// SQS side effects that follow a committed DynamoDB write. The write is the truth;
// if the SQS call fails, the system converges anyway (a message that should have
// been deleted comes back and is dropped, a lost send is re-sent by the sweeper,
// a missed visibility change only shortens or lengthens a wait), so the failure
// is logged and the request still succeeds.
import type { Logger } from "pino";

export async function bestEffort(log: Logger, what: string, fields: Record<string, unknown>, effect: () => Promise<unknown>): Promise<boolean> {
  try {
    await effect();
    return true;
  } catch (error) {
    log.warn({ ...fields, err: error }, `${what} failed; the sweeper or SQS redelivery will converge`);
    return false;
  }
}
