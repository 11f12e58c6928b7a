// Task states (Task.State) and the codes a ReportTaskResult request carries (SPEC §2, §3).

export const TASK_STATES = ["WAITING", "PROCEEDING", "SUCCESS", "FAILURE", "CANCEL"] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** SUCCESS, FAILURE and CANCEL: a final task never changes again. */
export const FINAL_STATES: ReadonlySet<string> = new Set<TaskState>(["SUCCESS", "FAILURE", "CANCEL"]);

export function isFinal(state: string): boolean {
  return FINAL_STATES.has(state);
}

/** Request `State` codes of ReportTaskResult (numbers of the seed project's State enum). */
export const REPORT_CODES = { SUCCESS: 1, FAILURE: 2, CANCEL: 4, PROCEEDING: 6 } as const;
export type ReportKind = keyof typeof REPORT_CODES;

/** The report kind of a request `State` code, or undefined when it is not one. */
export function reportKindOf(code: bigint | number | string): ReportKind | undefined {
  const value = String(code);
  for (const [kind, number] of Object.entries(REPORT_CODES)) if (String(number) === value) return kind as ReportKind;
  return undefined;
}
