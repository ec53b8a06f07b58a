import { Data } from "effect"

/** One broken rule: where in the spec, and what was expected instead. */
export interface RunSpecIssue {
  readonly path: string
  readonly message: string
}

/** A run spec that does not decode; `message` lists every issue as a `path: message` line. */
export class RunSpecError extends Data.TaggedError("RunSpecError")<{ readonly issues: ReadonlyArray<RunSpecIssue> }> {
  override get message(): string {
    return this.issues.map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`)).join("\n")
  }
}

/** A run.ts that cannot be imported, has no Effect as default export, or whose Effect failed. */
export class RunLoadError extends Data.TaggedError("RunLoadError")<{ readonly path: string; readonly reason: string; readonly cause?: unknown }> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}
