import { expect } from "vitest";
import { Rejection } from "../../service/src/tasks/status.js";

/** Runs `fn` and returns the Rejection it throws (fails the test if it throws anything else or nothing). */
export function rejectionOf(fn: () => unknown): Rejection {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(Rejection);
  return thrown as Rejection;
}
