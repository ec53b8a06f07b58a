/**
 * Turns a run's data section into a shard folder: pre-made shards are used as they are; text is
 * tokenized (byte tokenizer or tokenizer.json) into `outDir` once; synthetic tokens are generated.
 * Relative paths are resolved against the repository root, as the presets write them.
 */
import { existsSync } from "node:fs"
import { isAbsolute, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type { RunSpec } from "@covenant/dsl"
import { MANIFEST_FILE } from "../data/manifest.ts"
import { prepareShards, prepareSyntheticShards } from "../data/prepare.ts"
import { byteTokenizer, loadHfTokenizer } from "../data/tokenizer.ts"
import { RuntimeError } from "../errors.ts"

/** The repository root (this file is packages/runtime/src/swarm/data.ts). */
export const repositoryRoot = resolve(fileURLToPath(new URL("../../../../", import.meta.url)))

const fromRoot = (p: string) => (isAbsolute(p) ? p : join(repositoryRoot, p))

/** The folder of shards for `spec`, preparing them in `outDir` when the spec names text or synthetic data. */
export const prepareRunData = (spec: RunSpec, outDir: string): Effect.Effect<string, RuntimeError> =>
  Effect.gen(function* () {
    const source = spec.data.source
    if (source.kind === "shards") return fromRoot(source.uri)
    if (existsSync(join(outDir, MANIFEST_FILE))) return outDir
    const seqLen = spec.model.seqLen
    if (source.kind === "synthetic") {
      const samples = Math.max(spec.data.sampling.poolSize, spec.data.sampling.samplesPerWindow) * 2
      yield* prepareSyntheticShards({ outDir, vocabSize: spec.model.vocabSize, ...(spec.data.eosTokenId === undefined ? {} : { eosId: spec.data.eosTokenId }), seqLen, samples, seed: spec.seed })
      return outDir
    }
    const tokenizer = spec.data.tokenizer.kind === "bytes" ? byteTokenizer : yield* loadHfTokenizer(fromRoot(spec.data.tokenizer.name), spec.data.eosTokenId === undefined ? {} : { eosId: spec.data.eosTokenId })
    yield* prepareShards({ inputs: [fromRoot(source.path)], outDir, tokenizer, seqLen })
    return outDir
  }).pipe(Effect.mapError((e) => new RuntimeError({ phase: "data", reason: `${e._tag}: ${"reason" in e ? String(e.reason) : ""}` })))
