// The CloudWatch names of the metrics the server writes as Embedded Metric Format
// lines (emf-publisher.ts), in one place for the server and the CDK stack's dashboard
// (infra/src/constructs/dashboard.ts, through definitions.ts): no imports, so the CDK
// app loads nothing of the server's runtime for them.

/** The one dimension of every metric: the channel's name. */
export const EMF_DIMENSION = "Channel";

/** The default namespace (the CDK stack's `metricsNamespace`). */
export const DEFAULT_METRICS_NAMESPACE = "Queues";

/**
 * Per channel and replica, each written once per interval. Counts are the interval's
 * increase of the Prometheus counters (sum them: Sum over any period is the count in
 * it); Backlog and InFlight are the channel's SQS counts, the same on every replica
 * (take their Maximum or Average, not their Sum); CreditsWaiting is the replica's own
 * (Sum over the replicas); QueueWait and RunTime are the interval's average in
 * milliseconds, written only when the interval had any.
 */
export const EMF_METRICS = {
  created: "Created",
  delivered: "Delivered",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
  retried: "Retried",
  leasesExpired: "LeasesExpired",
  backlog: "Backlog",
  inFlight: "InFlight",
  creditsWaiting: "CreditsWaiting",
  queueWait: "QueueWait",
  runTime: "RunTime",
} as const;

export type EmfMetricKey = keyof typeof EMF_METRICS;

/** CloudWatch's namespace rule (up to 255 of A-Z a-z 0-9 . - _ / # : and space; not AWS/...): undefined when `namespace` keeps it, else what is wrong. */
export function metricsNamespaceProblem(namespace: string): string | undefined {
  if (!/^[A-Za-z0-9 ._#:/-]{1,255}$/.test(namespace)) {
    return `must be 1 to 255 of A-Z, a-z, 0-9, space and . - _ / # : (a CloudWatch namespace), got ${JSON.stringify(namespace.slice(0, 40))}`;
  }
  if (namespace.startsWith(":") || namespace.trim() !== namespace) return `must not start with ":" or a space, or end with a space, got ${JSON.stringify(namespace)}`;
  if (/^AWS\//i.test(namespace)) return `must not start with AWS/ (AWS services' namespaces), got ${JSON.stringify(namespace)}`;
  return undefined;
}
