/**
 * AdamW state as safetensors, for checkpoints: `<param>.exp_avg` and `<param>.exp_avg_sq` (torch's
 * names for the moments) plus the step count in the metadata.
 */
import { Data, Either } from "effect"
import type { SafetensorsDecodeError, SafetensorsEncodeError } from "../io/errors.ts"
import { decodeSafetensors, encodeSafetensors } from "../io/safetensors.ts"
import type { OptimizerState } from "./trainer.ts"

export class OptimizerStateError extends Data.TaggedError("OptimizerStateError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

const stepKey = "covenant.adamw.step"

export const encodeOptimizerState = (state: OptimizerState): Either.Either<Uint8Array, SafetensorsEncodeError> =>
  encodeSafetensors(
    [...state.moments].flatMap(([name, { m, v }]) => [
      [`${name}.exp_avg`, { shape: [m.length], data: m }] as const,
      [`${name}.exp_avg_sq`, { shape: [v.length], data: v }] as const
    ]),
    { [stepKey]: String(state.step) }
  )

export const decodeOptimizerState = (bytes: Uint8Array): Either.Either<OptimizerState, SafetensorsDecodeError | OptimizerStateError> =>
  Either.gen(function*() {
    const file = yield* decodeSafetensors(bytes)
    const stepText = file.metadata[stepKey] ?? ""
    const step = /^\d+$/.test(stepText) ? Number(stepText) : NaN
    if (!Number.isSafeInteger(step)) return yield* Either.left(new OptimizerStateError({ reason: `metadata ${stepKey} is "${stepText}", not a step count` }))
    const moments = new Map<string, { m: Float32Array; v: Float32Array }>()
    for (const [key, t] of file.tensors) {
      if (!key.endsWith(".exp_avg")) continue
      const name = key.slice(0, -".exp_avg".length)
      const v = file.tensors.get(`${name}.exp_avg_sq`)
      if (!(t.data instanceof Float32Array) || v === undefined || !(v.data instanceof Float32Array) || v.data.length !== t.data.length) {
        return yield* Either.left(new OptimizerStateError({ reason: `"${name}" needs f32 exp_avg and exp_avg_sq of one length` }))
      }
      moments.set(name, { m: t.data, v: v.data })
    }
    if (moments.size * 2 !== file.tensors.size) {
      return yield* Either.left(new OptimizerStateError({ reason: "tensors other than <param>.exp_avg / <param>.exp_avg_sq pairs" }))
    }
    return { step, moments }
  })
