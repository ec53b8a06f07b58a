#!/usr/bin/env bun
/**
 * Runs a Hugging Face LLaMA folder (config.json + fp32 model.safetensors) on a batch of token ids
 * and prints the mean next-token cross-entropy (logits[:, :-1] against tokens[:, 1:]).
 *
 *   bun packages/gpu-webgpu/bin/hf-eval.ts <folder> [--tokens file.npy] [--logits-out out.npy] [--backend cpu|webgpu]
 *
 * --tokens defaults to <folder>/tokens.npy (int ids, [batch, seq]); --logits-out writes the logits
 * as float32 [batch, seq, vocab]; --backend defaults to cpu. Output lines: `backend: <name>`,
 * `tokens: [B, T]`, `loss: <value>`.
 */
import { join } from "node:path"
import { Effect } from "effect"
import { decodeNpy, encodeNpy, readBytes, tokenBatchFromNpy, writeBytes } from "../src/io/index.ts"
import { Engine } from "../src/engine.ts"
import { LlamaModel, loadHfFolder, ModelInputError } from "../src/model/index.ts"
import { parseArgs, runMain, UsageError } from "./cli.ts"
import { engineLayer, isBackendChoice } from "./engine-layer.ts"

const usage =
  "usage: bun packages/gpu-webgpu/bin/hf-eval.ts <folder> [--tokens file.npy] [--logits-out out.npy] [--backend cpu|webgpu]"

const program = Effect.gen(function*() {
  const args = yield* parseArgs(process.argv.slice(2), ["tokens", "logits-out", "backend"])
  const folder = args.positional[0]
  if (folder === undefined || args.positional.length !== 1) return yield* new UsageError({ reason: "expected one model folder" })
  const backend = args.options.get("backend") ?? "cpu"
  if (!isBackendChoice(backend)) return yield* new UsageError({ reason: `--backend must be cpu or webgpu, got ${backend}` })

  const { spec, parameters } = yield* loadHfFolder(folder)
  const tokens = yield* tokenBatchFromNpy(yield* decodeNpy(yield* readBytes(args.options.get("tokens") ?? join(folder, "tokens.npy"))))
  if (tokens.seqLen < 2) return yield* new ModelInputError({ reason: "need at least two tokens per sequence for a next-token loss" })

  const { loss, logits, backendName } = yield* Effect.gen(function*() {
    const engine = yield* Engine
    return yield* Effect.tryPromise({
      try: async () => {
        const model = LlamaModel.create(engine, spec, parameters)
        try {
          const result = engine.noGrad(() =>
            engine.tidy(() => {
              const logits = model.forward(tokens.ids, tokens.batch, tokens.seqLen)
              return { logits, loss: model.lossFromLogits(logits, tokens.ids, tokens.batch, tokens.seqLen) }
            })
          )
          const values = { loss: (await engine.read(result.loss))[0]!, logits: await engine.read(result.logits) }
          result.loss.dispose()
          result.logits.dispose()
          return { ...values, backendName: engine.backend.name }
        } finally {
          model.dispose()
        }
      },
      catch: (cause) => cause instanceof ModelInputError ? cause : new ModelInputError({ reason: String(cause) })
    })
  }).pipe(Effect.provide(engineLayer(backend)))

  console.log(`backend: ${backendName}`)
  console.log(`tokens: [${tokens.batch}, ${tokens.seqLen}]`)
  console.log(`loss: ${loss}`)
  const logitsOut = args.options.get("logits-out")
  if (logitsOut !== undefined) {
    yield* writeBytes(logitsOut, yield* encodeNpy(logits, [tokens.batch, tokens.seqLen, spec.vocabSize]))
    console.log(`logits: ${logitsOut}`)
  }
})

runMain(usage, program)
