// A module resolution hook for running the repository's sources: adds the
// "queues-source" export condition, under which @queues/* packages resolve to src/.
export async function resolve(specifier, context, nextResolve) {
  return nextResolve(specifier, { ...context, conditions: [...context.conditions, "queues-source"] });
}
