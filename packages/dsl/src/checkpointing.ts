/** When the canonical model is saved and what a joiner gets back from it. */
import { Schema } from "effect"
import { Bool, NonEmptyString, PositiveInt } from "./fields.ts"

export const CheckpointingSpec = Schema.Struct({
  everyOuterSteps: PositiveInt,
  dir: NonEmptyString,
  /** Checkpoints kept; older ones are deleted. */
  keep: PositiveInt,
  /** AdamW moments, so a joiner does not restart them empty. */
  includeOptimizerState: Bool,
  /** The error-feedback buffer, for the same reason. */
  includeErrorFeedback: Bool,
}).annotations({ identifier: "CheckpointingSpec" })
export type CheckpointingSpec = typeof CheckpointingSpec.Type
