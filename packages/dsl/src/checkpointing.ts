/**
 * When the canonical model is saved. A checkpoint holds what the leader (a validator) has: the
 * shared parameters and, for the DiLoCo baseline, the outer Nesterov momentum. AdamW moments and
 * error feedback are each peer's own state (every peer's differ, a validator has neither), so no
 * checkpoint can hold "the" ones: a peer keeps them in its state folder and a joiner starts them
 * empty, as the reference does.
 */
import { Schema } from "effect"
import { NonEmptyString, PositiveInt } from "./fields.ts"

export const CheckpointingSpec = Schema.Struct({
  everyOuterSteps: PositiveInt,
  dir: NonEmptyString,
  /** Checkpoints kept; older ones are deleted. */
  keep: PositiveInt,
}).annotations({ identifier: "CheckpointingSpec" })
export type CheckpointingSpec = typeof CheckpointingSpec.Type
