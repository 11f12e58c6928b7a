// An IAM evaluator for the policies a synthesized CloudFormation template attaches to
// one role, and a recorder that turns the AWS SDK calls a client makes into the IAM
// requests (action, resource ARN) AWS would authorize them as. Together they check
// that what the server really calls is what its deployed role allows.
//
// The evaluator is deliberately strict: an intrinsic function, a pseudo parameter, a
// policy element or a way of attaching a policy it does not understand makes it throw,
// so that it can never allow something by not understanding it.

/** The fake AWS environment every ARN of a test is built in (one account, one region). */
export interface AwsEnv {
  partition: string;
  region: string;
  account: string;
}

export const FAKE_ENV: AwsEnv = { partition: "aws", region: "eu-west-1", account: "111122223333" };

export const tableArn = (env: AwsEnv, tableName: string): string => `arn:${env.partition}:dynamodb:${env.region}:${env.account}:table/${tableName}`;
export const queueArn = (env: AwsEnv, queueName: string): string => `arn:${env.partition}:sqs:${env.region}:${env.account}:${queueName}`;
export const queueUrl = (env: AwsEnv, queueName: string): string => `https://sqs.${env.region}.amazonaws.com/${env.account}/${queueName}`;

/** The queue name in a queue URL (its last path segment), whatever host the URL names. */
export function queueNameOfUrl(url: string): string {
  const name = new URL(url).pathname.split("/").filter(Boolean).pop();
  if (!name) throw new Error(`no queue name in the queue URL ${url}`);
  return name;
}

// ----- CloudFormation intrinsics -----

/** What a logical ID resolves to: its Ref value and its attributes (Fn::GetAtt). */
export interface ResolvedResource {
  ref: string;
  attributes: Record<string, string>;
}

export class UnresolvableIntrinsic extends Error {}

/** Resolves Ref / Fn::GetAtt / Fn::Join / Fn::Sub over the given resources and the pseudo parameters of `env`. */
export class IntrinsicResolver {
  constructor(
    readonly env: AwsEnv,
    private readonly resources: Record<string, ResolvedResource>,
  ) {}

  ref(name: string): string {
    const pseudo: Record<string, string> = {
      "AWS::Partition": this.env.partition,
      "AWS::Region": this.env.region,
      "AWS::AccountId": this.env.account,
      "AWS::URLSuffix": "amazonaws.com",
    };
    const value = pseudo[name] ?? this.resources[name]?.ref;
    if (value === undefined) throw new UnresolvableIntrinsic(`cannot resolve {"Ref": "${name}"}: not a resource this evaluator knows`);
    return value;
  }

  getAtt(logicalId: string, attribute: string): string {
    const value = this.resources[logicalId]?.attributes[attribute];
    if (value === undefined) throw new UnresolvableIntrinsic(`cannot resolve {"Fn::GetAtt": ["${logicalId}", "${attribute}"]}: unknown resource or attribute`);
    return value;
  }

  /** A string, or an intrinsic that yields one. */
  string(value: unknown): string {
    if (typeof value === "string") return value;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UnresolvableIntrinsic(`not a string: ${JSON.stringify(value)}`);
    const keys = Object.keys(value);
    const [key] = keys;
    const argument = (value as Record<string, unknown>)[key as string];
    if (keys.length !== 1) throw new UnresolvableIntrinsic(`not an intrinsic function: ${JSON.stringify(value)}`);
    switch (key) {
      case "Ref":
        if (typeof argument !== "string") break;
        return this.ref(argument);
      case "Fn::GetAtt": {
        const [logicalId, attribute] = typeof argument === "string" ? splitOnce(argument, ".") : (argument as unknown[]);
        if (typeof logicalId !== "string" || typeof attribute !== "string") break;
        return this.getAtt(logicalId, attribute);
      }
      case "Fn::Join": {
        const [separator, parts] = argument as [unknown, unknown];
        if (typeof separator !== "string" || !Array.isArray(parts)) break;
        return parts.map((part) => this.string(part)).join(separator);
      }
      case "Fn::Sub": {
        const [text, variables = {}] = typeof argument === "string" ? [argument] : (argument as [unknown, Record<string, unknown>?]);
        if (typeof text !== "string") break;
        return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
          if (name in variables) return this.string(variables[name]);
          return name.includes(".") ? this.getAtt(...splitOnce(name, ".")) : this.ref(name);
        });
      }
    }
    throw new UnresolvableIntrinsic(`cannot resolve ${JSON.stringify(value)}`);
  }

  /** A string or a list of them (each possibly an intrinsic). */
  strings(value: unknown): string[] {
    return Array.isArray(value) ? value.map((entry) => this.string(entry)) : [this.string(value)];
  }
}

function splitOnce(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + 1)];
}

// ----- policies -----

export interface Statement {
  sid: string | undefined;
  effect: "Allow" | "Deny";
  actions: string[];
  resources: string[];
}

/** The elements this evaluator understands; anything else (Condition, NotAction, ...) makes it throw. */
const STATEMENT_KEYS = new Set(["Sid", "Effect", "Action", "Resource"]);

export function statementsOf(document: unknown, resolver: IntrinsicResolver, where: string): Statement[] {
  const { Statement, ...rest } = document as { Statement?: unknown; Version?: unknown };
  if (Object.keys(rest).some((key) => key !== "Version")) throw new Error(`${where}: unknown policy document keys ${Object.keys(rest).join(", ")}`);
  const list = Array.isArray(Statement) ? Statement : [Statement];
  return list.map((raw, index) => {
    const statement = raw as Record<string, unknown>;
    const unknown = Object.keys(statement).filter((key) => !STATEMENT_KEYS.has(key));
    if (unknown.length > 0) throw new Error(`${where}, statement ${index}: cannot evaluate ${unknown.join(", ")}`);
    if (statement.Effect !== "Allow" && statement.Effect !== "Deny") throw new Error(`${where}, statement ${index}: bad Effect ${String(statement.Effect)}`);
    if (statement.Action === undefined || statement.Resource === undefined) throw new Error(`${where}, statement ${index}: needs Action and Resource`);
    const actions = resolver.strings(statement.Action);
    const resources = resolver.strings(statement.Resource);
    for (const value of [...actions, ...resources]) {
      if (value.includes("${")) throw new Error(`${where}, statement ${index}: policy variables are not supported (${value})`);
    }
    return { sid: statement.Sid as string | undefined, effect: statement.Effect, actions, resources };
  });
}

interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
}

/**
 * Every statement that applies to the role `roleLogicalId` of a template: the role's
 * inline policies and each AWS::IAM::Policy / ManagedPolicy / RolePolicy attached to it.
 * Managed policies named by ARN and permissions boundaries cannot be evaluated: they throw.
 */
export function roleStatements(template: { Resources?: Record<string, CfnResource> }, roleLogicalId: string, resolver: IntrinsicResolver): Statement[] {
  const resources = template.Resources ?? {};
  const role = resources[roleLogicalId];
  if (role?.Type !== "AWS::IAM::Role") throw new Error(`${roleLogicalId} is not an AWS::IAM::Role`);
  const props = role.Properties ?? {};
  if ((props.ManagedPolicyArns as unknown[] | undefined)?.length) throw new Error(`${roleLogicalId} has managed policies by ARN, which this evaluator cannot read`);
  if (props.PermissionsBoundary !== undefined) throw new Error(`${roleLogicalId} has a permissions boundary, which this evaluator cannot evaluate`);
  const statements = ((props.Policies as { PolicyName?: string; PolicyDocument: unknown }[] | undefined) ?? []).flatMap((policy) =>
    statementsOf(policy.PolicyDocument, resolver, `${roleLogicalId} inline policy ${policy.PolicyName ?? ""}`),
  );
  const isThisRole = (reference: unknown): boolean => {
    if (typeof reference === "string") return reference === props.RoleName;
    const keys = Object.keys(reference as object);
    if (keys.length === 1 && keys[0] === "Ref") return (reference as { Ref: unknown }).Ref === roleLogicalId;
    throw new Error(`a policy names its role by ${JSON.stringify(reference)}, which this evaluator cannot resolve`);
  };
  for (const [id, resource] of Object.entries(resources)) {
    const p = resource.Properties ?? {};
    const attached =
      resource.Type === "AWS::IAM::Policy" || resource.Type === "AWS::IAM::ManagedPolicy"
        ? ((p.Roles as unknown[] | undefined) ?? []).some(isThisRole)
        : resource.Type === "AWS::IAM::RolePolicy"
          ? isThisRole(p.RoleName)
          : false;
    if (attached) statements.push(...statementsOf(p.PolicyDocument, resolver, `${resource.Type} ${id}`));
  }
  return statements;
}

/** IAM's wildcards: `*` any run of characters, `?` one character. Actions match case-insensitively, resources exactly. */
export function wildcardMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .split("")
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`, ignoreCase ? "is" : "s").test(value);
}

export type Decision = "allow" | "implicitDeny" | "explicitDeny";

export class PolicyEvaluator {
  constructor(readonly statements: Statement[]) {
    if (statements.length === 0) throw new Error("no statements: the evaluator would deny everything, which proves nothing");
  }

  /** IAM's order: an explicit Deny wins, then any Allow, else the implicit deny. */
  decide(action: string, resource: string): Decision {
    const matching = this.statements.filter(
      (s) => s.actions.some((pattern) => wildcardMatch(pattern, action, true)) && s.resources.some((pattern) => wildcardMatch(pattern, resource, false)),
    );
    if (matching.some((s) => s.effect === "Deny")) return "explicitDeny";
    return matching.some((s) => s.effect === "Allow") ? "allow" : "implicitDeny";
  }

  allows(action: string, resource: string): boolean {
    return this.decide(action, resource) === "allow";
  }
}

// ----- recording the SDK calls -----

export type Service = "dynamodb" | "sqs";

export interface RecordedCall {
  service: Service;
  /** The command's name without "Command", e.g. "TransactWriteItems". */
  command: string;
  input: Record<string, unknown>;
}

export interface IamRequest {
  action: string;
  resource: string;
  /** The call it comes from, e.g. "TransactWriteItems (Put)". */
  call: string;
}

type MiddlewareClient = { middlewareStack: { add(middleware: unknown, options: object): void } };

/** Records every command sent through the clients it is attached to (before any other middleware can fail it). */
export class AwsCallRecorder {
  readonly calls: RecordedCall[] = [];
  private static attached = 0;

  attach(client: MiddlewareClient, service: Service): void {
    client.middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: { input?: Record<string, unknown> }) => {
        this.calls.push({ service, command: (context.commandName ?? "unknown").replace(/Command$/, ""), input: args.input ?? {} });
        return next(args);
      },
      { step: "initialize", priority: "high", name: `iamRecorder${AwsCallRecorder.attached++}` },
    );
  }

  /** The calls so far of one command. */
  of(command: string): RecordedCall[] {
    return this.calls.filter((call) => call.command === command);
  }
}

export class UnmappedCall extends Error {}

/** How a test's names become ARNs: table name → table ARN, queue URL / name → queue ARN. */
export interface ArnMapper {
  table(tableName: string): string;
  queueOfUrl(url: string): string;
  queueOfName(name: string): string;
}

export function arnMapper(env: AwsEnv): ArnMapper {
  return {
    table: (name) => (name.startsWith("arn:") ? name : tableArn(env, name)),
    queueOfUrl: (url) => queueArn(env, queueNameOfUrl(url)),
    queueOfName: (name) => queueArn(env, name),
  };
}

const TABLE_ACTIONS = new Set(["GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable", "DescribeTimeToLive", "ConditionCheckItem"]);
const TRANSACT_WRITE_ACTIONS: Record<string, string> = {
  Put: "dynamodb:PutItem",
  Update: "dynamodb:UpdateItem",
  Delete: "dynamodb:DeleteItem",
  ConditionCheck: "dynamodb:ConditionCheckItem",
};
/** SQS calls on one queue (by QueueUrl); a batch call is authorized as its single-message action. */
const QUEUE_ACTIONS: Record<string, string> = {
  SendMessage: "sqs:SendMessage",
  SendMessageBatch: "sqs:SendMessage",
  ReceiveMessage: "sqs:ReceiveMessage",
  DeleteMessage: "sqs:DeleteMessage",
  DeleteMessageBatch: "sqs:DeleteMessage",
  ChangeMessageVisibility: "sqs:ChangeMessageVisibility",
  ChangeMessageVisibilityBatch: "sqs:ChangeMessageVisibility",
  GetQueueAttributes: "sqs:GetQueueAttributes",
  SetQueueAttributes: "sqs:SetQueueAttributes",
  PurgeQueue: "sqs:PurgeQueue",
  DeleteQueue: "sqs:DeleteQueue",
};

/** The IAM requests one call is authorized as; throws UnmappedCall for a command this mapping does not know. */
export function iamRequestsOf(call: RecordedCall, arns: ArnMapper): IamRequest[] {
  const { command, input } = call;
  const need = (value: unknown, what: string): string => {
    if (typeof value !== "string" || value === "") throw new UnmappedCall(`${command} without a ${what}`);
    return value;
  };
  if (call.service === "dynamodb") {
    const table = (name: unknown) => arns.table(need(name, "TableName"));
    if (TABLE_ACTIONS.has(command)) return [{ action: `dynamodb:${command}`, resource: table(input.TableName), call: command }];
    if (command === "Query" || command === "Scan") {
      const base = table(input.TableName);
      const resource = input.IndexName === undefined ? base : `${base}/index/${need(input.IndexName, "IndexName")}`;
      return [{ action: `dynamodb:${command}`, resource, call: command }];
    }
    if (command === "BatchGetItem" || command === "BatchWriteItem") {
      return Object.keys(input.RequestItems as object).map((name) => ({ action: `dynamodb:${command}`, resource: table(name), call: command }));
    }
    if (command === "TransactWriteItems" || command === "TransactGetItems") {
      const kinds = command === "TransactGetItems" ? { Get: "dynamodb:GetItem" } : TRANSACT_WRITE_ACTIONS;
      return (input.TransactItems as Record<string, { TableName?: unknown }>[]).flatMap((entry) =>
        Object.entries(entry).map(([kind, operation]) => {
          const action = (kinds as Record<string, string>)[kind];
          if (!action) throw new UnmappedCall(`${command} entry of kind ${kind}`);
          return { action, resource: table(operation.TableName), call: `${command} (${kind})` };
        }),
      );
    }
  } else {
    const action = QUEUE_ACTIONS[command];
    if (action) return [{ action, resource: arns.queueOfUrl(need(input.QueueUrl, "QueueUrl")), call: command }];
    // The source is named by its ARN (the emulator's account and region): mapped by the queue's name, like the others.
    if (command === "StartMessageMoveTask") return [{ action: "sqs:StartMessageMoveTask", resource: arns.queueOfName(need(input.SourceArn, "SourceArn").split(":").at(-1) as string), call: command }];
    if (command === "GetQueueUrl") return [{ action: "sqs:GetQueueUrl", resource: arns.queueOfName(need(input.QueueName, "QueueName")), call: command }];
  }
  throw new UnmappedCall(`no IAM mapping for ${call.service} ${command}`);
}
