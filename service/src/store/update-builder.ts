// Builds UpdateExpression / ConditionExpression strings with placeholders, so
// attribute names that are DynamoDB reserved words (state, owner, next, data, ...)
// and values never end up spliced into expressions.

export class UpdateBuilder {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly adds: string[] = [];
  private readonly conditions: string[] = [];
  private counter = 0;

  name(attribute: string): string {
    const placeholder = `#${attribute}`;
    this.names[placeholder] = attribute;
    return placeholder;
  }

  value(value: unknown): string {
    const placeholder = `:v${this.counter++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  set(attribute: string, value: unknown): this {
    this.sets.push(`${this.name(attribute)} = ${this.value(value)}`);
    return this;
  }

  /** Sets the attribute only where it is absent (used to pipe Output into an empty Input). */
  setIfAbsent(attribute: string, value: unknown): this {
    const name = this.name(attribute);
    this.sets.push(`${name} = if_not_exists(${name}, ${this.value(value)})`);
    return this;
  }

  increment(attribute: string): this {
    const name = this.name(attribute);
    this.sets.push(`${name} = ${name} + ${this.value(1n)}`);
    return this;
  }

  add(attribute: string, amount: bigint): this {
    this.adds.push(`${this.name(attribute)} ${this.value(amount)}`);
    return this;
  }

  remove(attribute: string): this {
    this.removes.push(this.name(attribute));
    return this;
  }

  /** Adds a condition; `build` receives the builder to make placeholders. */
  when(build: (b: this) => string): this {
    this.conditions.push(build(this));
    return this;
  }

  get updateExpression(): string {
    const parts: string[] = [];
    if (this.sets.length) parts.push(`SET ${this.sets.join(", ")}`);
    if (this.removes.length) parts.push(`REMOVE ${this.removes.join(", ")}`);
    if (this.adds.length) parts.push(`ADD ${this.adds.join(", ")}`);
    return parts.join(" ");
  }

  get conditionExpression(): string | undefined {
    return this.conditions.length ? this.conditions.map((c) => `(${c})`).join(" AND ") : undefined;
  }

  /** The expression part of an Update / TransactWriteItems Update entry. */
  expression() {
    const values = Object.keys(this.values).length ? this.values : undefined;
    return {
      UpdateExpression: this.updateExpression,
      ConditionExpression: this.conditionExpression,
      ExpressionAttributeNames: this.names,
      ExpressionAttributeValues: values,
    };
  }
}
