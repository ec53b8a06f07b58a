import { Data } from "effect"

/** A node could not go on: which phase failed and why (store, chain, codec, state files, ...). */
export class RuntimeError extends Data.TaggedError("RuntimeError")<{
  readonly phase: string
  readonly reason: string
}> {}

/** Wraps any tagged failure of another package into a RuntimeError of `phase`. */
export const inPhase = (phase: string) => (error: { readonly _tag: string; readonly message?: string; readonly reason?: unknown }): RuntimeError =>
  new RuntimeError({ phase, reason: `${error._tag}: ${typeof error.reason === "string" ? error.reason : error.message ?? ""}` })
