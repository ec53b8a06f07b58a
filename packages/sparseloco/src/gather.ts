/** Regroups decoded messages (one per peer) into per-tensor lists for aggregation. */
import { Either } from "effect"
import { CodecError } from "./errors.ts"
import type { DenseTensor, TensorUpdate } from "./update.ts"
import type { UpdateMessage } from "./wire.ts"

const mismatch = (message: string) => Either.left(new CodecError({ reason: "PeerMismatch", message }))

/** Tensor `i` of every message, in message (peer) order; all must be sparse and share its name. */
export const sparseAt = (messages: readonly UpdateMessage[], i: number): Either.Either<TensorUpdate[], CodecError> => {
  const out: TensorUpdate[] = []
  for (const m of messages) {
    const t = m.tensors[i]
    if (t === undefined || t.coding === "f32") return mismatch(`tensor ${i} is missing or dense in uid ${m.meta.uid}'s update`)
    if (out.length > 0 && t.update.name !== out[0]!.name) return mismatch(`tensor ${i} is ${t.update.name} in uid ${m.meta.uid}'s update, ${out[0]!.name} elsewhere`)
    out.push(t.update)
  }
  return Either.right(out)
}

/** Tensor `i` of every message as full-precision values (DiLoCo), in message order. */
export const denseAt = (messages: readonly UpdateMessage[], i: number): Either.Either<DenseTensor[], CodecError> => {
  const out: DenseTensor[] = []
  for (const m of messages) {
    const t = m.tensors[i]
    if (t === undefined || t.coding !== "f32") return mismatch(`tensor ${i} is missing or sparse in uid ${m.meta.uid}'s update`)
    if (out.length > 0 && (t.dense.name !== out[0]!.name || t.dense.values.length !== out[0]!.values.length)) {
      return mismatch(`tensor ${i} differs between updates`)
    }
    out.push(t.dense)
  }
  return Either.right(out)
}
