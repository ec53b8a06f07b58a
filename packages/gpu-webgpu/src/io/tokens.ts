import { Either } from "effect"
import { NpyDecodeError } from "./errors.ts"
import type { NpyArray } from "./npy.ts"

export interface TokenBatch {
  readonly ids: Int32Array
  readonly batch: number
  readonly seqLen: number
}

/**
 * Token ids from a decoded .npy of shape [batch, seq] (or [seq], one sequence) in any integer
 * dtype we read; ids must fit in an i32 and be non-negative.
 */
export const tokenBatchFromNpy = (array: NpyArray): Either.Either<TokenBatch, NpyDecodeError> => {
  const fail = (reason: string) => Either.left(new NpyDecodeError({ reason }))
  if (array.dtype === "<f4" || array.dtype === "<f8") return fail(`token ids must be integers, got ${array.dtype}`)
  const shape = array.shape
  if (shape.length !== 1 && shape.length !== 2) return fail(`token ids must be [batch, seq] or [seq], got (${shape.join(", ")})`)
  const batch = shape.length === 2 ? shape[0]! : 1
  const seqLen = shape[shape.length - 1]!
  if (batch === 0 || seqLen === 0) return fail(`token ids shape (${shape.join(", ")}) is empty`)
  const ids = new Int32Array(array.data.length)
  for (let i = 0; i < ids.length; i++) {
    const v = array.data[i]!
    const n = typeof v === "bigint" ? (v >= 0n && v <= 0x7fffffffn ? Number(v) : -1) : v
    if (n < 0 || n > 0x7fffffff) return fail(`token id ${String(v)} at ${i} is not in [0, 2^31)`)
    ids[i] = n
  }
  return Either.right({ ids, batch, seqLen })
}
