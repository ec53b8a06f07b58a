#!/usr/bin/env bun
/**
 * Exports one of our checkpoints (a safetensors file carrying its spec) as a Hugging Face
 * LlamaForCausalLM folder: `<outdir>/config.json` and `<outdir>/model.safetensors` (fp32, HF names).
 *
 *   bun packages/gpu-webgpu/bin/hf-export.ts <checkpoint.safetensors> <outdir>
 */
import { Effect } from "effect"
import { loadCheckpoint, writeHfFolder } from "../src/model/index.ts"
import { parseArgs, runMain, UsageError } from "./cli.ts"

const usage = "usage: bun packages/gpu-webgpu/bin/hf-export.ts <checkpoint.safetensors> <outdir>"

const program = Effect.gen(function*() {
  const args = yield* parseArgs(process.argv.slice(2), [])
  const [checkpointPath, outDir] = args.positional
  if (checkpointPath === undefined || outDir === undefined || args.positional.length !== 2) {
    return yield* new UsageError({ reason: "expected a checkpoint and an output folder" })
  }
  const { spec, parameters } = yield* loadCheckpoint(checkpointPath)
  yield* writeHfFolder(outDir, spec, parameters)
  console.log(`exported ${parameters.size} tensors and config.json to ${outDir}`)
})

runMain(usage, program)
