/** A whole run: identity, model, data, both optimizers, compression, participation, infrastructure, checkpoints. */
import { Schema } from "effect"
import { CheckpointingSpec } from "./checkpointing.ts"
import { CompressionSpec } from "./compression.ts"
import { BYTE_VOCAB_SIZE, DataSpec } from "./data.ts"
import { numberWhere, stringWhere } from "./fields.ts"
import { InfrastructureSpec } from "./infrastructure.ts"
import { ModelSpec } from "./model.ts"
import { InnerOptimizerSpec, OuterOptimizerSpec } from "./optimizer.ts"
import { ParticipationSpec } from "./participation.ts"

type Issue = { path: ReadonlyArray<string>; message: string }

const RunFields = Schema.Struct({
  /** The run's id: names its storage namespace, checkpoints and logs. */
  name: stringWhere("a name of 1 to 64 characters [a-z0-9._-] starting with a letter or digit", (s) =>
    /^[a-z0-9][a-z0-9._-]{0,63}$/.test(s),
  ),
  /** Seeds model initialisation and everything else that is random but must agree across peers. */
  seed: numberWhere("an integer in [0, 2^32)", (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32),
  /** Tokens the whole run should train on (all peers together); the plan derives rounds from it. */
  tokenBudget: Schema.optional(numberWhere("a finite number > 0", (n) => Number.isFinite(n) && n > 0)),
  model: ModelSpec,
  data: DataSpec,
  innerOptimizer: InnerOptimizerSpec,
  outerOptimizer: OuterOptimizerSpec,
  compression: CompressionSpec,
  participation: ParticipationSpec,
  infrastructure: InfrastructureSpec,
  checkpointing: CheckpointingSpec,
})

/** Checks that relate fields of different sections; each issue points at the field to change. */
const crossSectionIssues = (r: typeof RunFields.Type): Array<Issue> => {
  const issues: Array<Issue> = []
  const samplesUsed = r.innerOptimizer.batchSize * r.innerOptimizer.innerSteps
  if (r.data.sampling.samplesPerWindow !== samplesUsed) {
    issues.push({
      path: ["data", "sampling", "samplesPerWindow"],
      message: `expected innerOptimizer.batchSize x innerSteps (${r.innerOptimizer.batchSize} x ${r.innerOptimizer.innerSteps} = ${samplesUsed}), got ${r.data.sampling.samplesPerWindow}`,
    })
  }
  if (r.data.tokenizer.kind === "bytes" && r.model.vocabSize < BYTE_VOCAB_SIZE) {
    issues.push({
      path: ["model", "vocabSize"],
      message: `expected at least ${BYTE_VOCAB_SIZE} for the byte-level tokenizer (256 bytes, end of document, padding), got ${r.model.vocabSize}`,
    })
  }
  if (r.data.eosTokenId !== undefined && r.data.eosTokenId >= r.model.vocabSize) {
    issues.push({ path: ["data", "eosTokenId"], message: `expected less than model.vocabSize (${r.model.vocabSize}), got ${r.data.eosTokenId}` })
  }
  const chain = r.infrastructure.chain
  if (chain.kind === "local" && chain.blockTimeMs !== r.participation.blockTimeMs) {
    issues.push({
      path: ["infrastructure", "chain", "blockTimeMs"],
      message: `expected participation.blockTimeMs (${r.participation.blockTimeMs}), got ${chain.blockTimeMs}`,
    })
  }
  return issues
}

export const RunSpec = RunFields.pipe(Schema.filter(crossSectionIssues)).annotations({ identifier: "RunSpec" })
export type RunSpec = typeof RunSpec.Type
/** What a run.ts writes before decoding (identical to RunSpec: the schema has no transformations). */
export type RunSpecInput = typeof RunSpec.Encoded
