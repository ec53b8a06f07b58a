/** Variants of a spec: deep-patch it, then validate the result again. */
import type { Effect } from "effect"
import { decodeRunSpec } from "./decode.ts"
import type { RunSpecError } from "./errors.ts"
import type { RunSpec } from "./runSpec.ts"

/** Objects merge field by field; arrays and scalars replace; a union member with another `kind` replaces whole. */
export type DeepPatch<T> = T extends ReadonlyArray<unknown>
  ? T
  : T extends object
    ? { readonly [K in keyof T]?: DeepPatch<T[K]> }
    : T

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const merge = (base: unknown, patch: unknown): unknown => {
  if (!isRecord(base) || !isRecord(patch)) return patch
  // Switching a union member (compression "sparseloco" -> "none") must not keep the old member's fields.
  if ("kind" in patch && patch["kind"] !== base["kind"]) return patch
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) out[key] = merge(base[key], value)
  }
  return out
}

/** `derive(covenant72b(), { compression: { topk: 128 } })`: the patched spec, validated. */
export const derive = (spec: RunSpec, patch: DeepPatch<RunSpec>): Effect.Effect<RunSpec, RunSpecError> =>
  decodeRunSpec(merge(spec, patch))
