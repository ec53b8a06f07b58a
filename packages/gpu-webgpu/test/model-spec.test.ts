import { describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parameterCount } from "@covenant/dsl"
import { Effect, Either } from "effect"
import {
  decodeCheckpoint,
  encodeCheckpoint,
  hfConfigFromSpec,
  initLlamaParameters,
  initStd,
  llamaParameters,
  loadHfFolder,
  specFromHfConfig,
  writeHfFolder
} from "../src/model/index.ts"
import type { LlamaSpec } from "../src/model/index.ts"
import { decodeSafetensors, encodeSafetensors } from "../src/io/index.ts"
import { vectorDir } from "./model-engines.ts"

const sharedConfig: Record<string, unknown> = JSON.parse(readFileSync(`${vectorDir}/config.json`, "utf8"))

const debugSpec: LlamaSpec = {
  family: "llama", dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 128, vocabSize: 256, seqLen: 64,
  ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, dtype: "float32"
}

const reasonOf = <E extends { reason: string }>(r: Either.Either<unknown, E>): string => {
  if (Either.isRight(r)) throw new Error("expected a failure")
  return r.left.reason
}

describe("HF config", () => {
  test("maps the shared PyTorch config to a spec", () => {
    const spec = Either.getOrThrow(specFromHfConfig(sharedConfig))
    expect(spec).toEqual({
      family: "llama", dim: 64, nLayers: 2, nHeads: 8, nKvHeads: 2, ffnDim: 160, vocabSize: 97, seqLen: 128,
      ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, dtype: "float32"
    })
  })

  test("spec -> config.json -> spec is the identity", () => {
    for (const spec of [debugSpec, { ...debugSpec, tiedEmbeddings: true, nKvHeads: 4, dtype: "bfloat16" as const }]) {
      expect(Either.getOrThrow(specFromHfConfig(hfConfigFromSpec(spec)))).toEqual(spec)
    }
  })

  test("the shared safetensors holds exactly the parameters its config implies", () => {
    const spec = Either.getOrThrow(specFromHfConfig(sharedConfig))
    const file = Either.getOrThrow(decodeSafetensors(new Uint8Array(readFileSync(`${vectorDir}/model.safetensors`))))
    expect([...file.tensors.keys()].sort()).toEqual(llamaParameters(spec).map((p) => p.name).sort())
    for (const p of llamaParameters(spec)) expect(file.tensors.get(p.name)!.shape).toEqual([...p.shape])
  })

  test("rejects what the model does not implement, with a typed error", () => {
    const bad = (patch: Record<string, unknown>) => {
      const r = specFromHfConfig({ ...sharedConfig, ...patch })
      if (Either.isRight(r)) throw new Error(`accepted ${JSON.stringify(patch)}`)
      expect(r.left._tag).toBe("HfConfigError")
      return r.left.reason
    }
    expect(bad({ rope_scaling: { rope_type: "llama3", factor: 8 } })).toContain("rope_scaling")
    expect(bad({ head_dim: 16 })).toContain("head_dim")
    expect(bad({ hidden_act: "gelu" })).toContain("hidden_act")
    expect(bad({ attention_bias: true })).toContain("attention_bias")
    expect(bad({ model_type: "mistral" })).toContain("model_type")
    expect(bad({ num_key_value_heads: 3 })).toContain("divisor of nHeads")
    expect(bad({ hidden_size: "64" })).toContain("hidden_size")
    expect(bad({ vocab_size: undefined })).toContain("vocab_size")
    // rope_scaling null and a consistent head_dim are plain LLaMA
    expect(Either.isRight(specFromHfConfig({ ...sharedConfig, rope_scaling: null, head_dim: 8 }))).toBe(true)
  })
})

describe("parameters and init", () => {
  test("HF names and shapes; tied embeddings drop lm_head", () => {
    const names = llamaParameters(debugSpec).map((p) => p.name)
    expect(names.length).toBe(1 + 9 * 2 + 2)
    expect(names).toContain("model.layers.1.self_attn.k_proj.weight")
    expect(llamaParameters(debugSpec).find((p) => p.name === "model.layers.0.self_attn.k_proj.weight")!.shape).toEqual([32, 64])
    expect(llamaParameters({ ...debugSpec, tiedEmbeddings: true }).map((p) => p.name)).not.toContain("lm_head.weight")
    // embed 256*64, per layer 4 attn (64*64*2 + 32*64*2) + 3*128*64 + 2*64, final norm, lm_head
    expect(parameterCount(debugSpec)).toBe(256 * 64 + 2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 128 * 64 + 2 * 64) + 64 + 256 * 64)
  })

  test("init is deterministic per seed, normal(0, 0.02) for matrices and ones for norms", () => {
    const a = initLlamaParameters(debugSpec, 7)
    const b = initLlamaParameters(debugSpec, 7)
    const c = initLlamaParameters(debugSpec, 8)
    expect(a.get("lm_head.weight")).toEqual(b.get("lm_head.weight")!)
    expect(a.get("lm_head.weight")).not.toEqual(c.get("lm_head.weight")!)
    expect([...new Set(a.get("model.layers.0.input_layernorm.weight"))]).toEqual([1])
    const all = [...a].filter(([n]) => !n.includes("norm")).flatMap(([, d]) => [...d])
    const mean = all.reduce((s, x) => s + x, 0) / all.length
    const std = Math.sqrt(all.reduce((s, x) => s + (x - mean) ** 2, 0) / all.length)
    // ~100k samples: the sample mean's sd is 6e-5, the std's about 4.5e-5
    expect(Math.abs(mean)).toBeLessThan(5e-4)
    expect(Math.abs(std - initStd)).toBeLessThan(5e-4)
  })
})

describe("checkpoint", () => {
  test("round trip keeps the spec and every parameter bit-exactly", () => {
    const params = initLlamaParameters(debugSpec, 1)
    const back = Either.getOrThrow(decodeCheckpoint(Either.getOrThrow(encodeCheckpoint(debugSpec, params, { step: "12" }))))
    expect(back.spec).toEqual(debugSpec)
    expect(back.metadata["step"]).toBe("12")
    for (const [name, data] of params) expect(back.parameters.get(name)).toEqual(data)
  })

  test("mismatched tensors and missing specs are typed errors", () => {
    const params = initLlamaParameters(debugSpec, 1)
    const missing = new Map(params)
    missing.delete("model.norm.weight")
    expect(reasonOf(encodeCheckpoint(debugSpec, missing))).toContain("missing")
    const extra = new Map(params).set("bias", new Float32Array(1))
    expect(reasonOf(encodeCheckpoint(debugSpec, extra))).toContain("unexpected")
    const bytes = Either.getOrThrow(encodeCheckpoint(debugSpec, params))
    expect(reasonOf(decodeCheckpoint(bytes, { ...debugSpec, ffnDim: 96 }))).toContain("mlp")
    const hfBytes = new Uint8Array(readFileSync(`${vectorDir}/model.safetensors`))
    expect(reasonOf(decodeCheckpoint(hfBytes))).toContain("no \"covenant.spec\"")
    const spec = Either.getOrThrow(specFromHfConfig(sharedConfig))
    expect(decodeCheckpoint(hfBytes, spec).pipe(Either.map((c) => c.parameters.size))).toEqual(Either.right(llamaParameters(spec).length))
  })
})

describe("HF folders", () => {
  const tied: LlamaSpec = { ...debugSpec, tiedEmbeddings: true, nLayers: 1 }

  const folderWith = (extra: ReadonlyArray<readonly [string, Float32Array]>) => {
    const dir = mkdtempSync(join(tmpdir(), "hf-folder-"))
    const params = initLlamaParameters(tied, 3)
    const tensors = [...llamaParameters(tied).map(({ name, shape }) => [name, { shape, data: params.get(name)! }] as const),
      ...extra.map(([name, data]) => [name, { shape: [data.length], data }] as const)]
    writeFileSync(join(dir, "model.safetensors"), Either.getOrThrow(encodeSafetensors(tensors)))
    writeFileSync(join(dir, "config.json"), JSON.stringify(hfConfigFromSpec(tied)))
    return { dir, params }
  }

  test("loading skips rotary inv_freq buffers and an lm_head stored beside tied embeddings", async () => {
    const { dir, params } = folderWith([
      ["model.layers.0.self_attn.rotary_emb.inv_freq", new Float32Array(8)],
      ["lm_head.weight", new Float32Array(256 * 64)]
    ])
    const loaded = await Effect.runPromise(loadHfFolder(dir))
    expect(loaded.spec).toEqual(tied)
    expect([...loaded.parameters.keys()].sort()).toEqual([...params.keys()].sort())
    expect(loaded.parameters.get("model.embed_tokens.weight")).toEqual(params.get("model.embed_tokens.weight")!)
  })

  test("any other extra tensor is a typed error", async () => {
    const { dir } = folderWith([["model.layers.0.self_attn.q_proj.bias", new Float32Array(64)]])
    const error = await Effect.runPromise(Effect.flip(loadHfFolder(dir)))
    expect(error._tag).toBe("CheckpointMismatchError")
  })

  test("writeHfFolder then loadHfFolder is the identity", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hf-folder-"))
    const params = initLlamaParameters(debugSpec, 4)
    await Effect.runPromise(writeHfFolder(dir, debugSpec, params))
    const loaded = await Effect.runPromise(loadHfFolder(dir))
    expect(loaded.spec).toEqual(debugSpec)
    for (const [name, data] of params) expect(loaded.parameters.get(name)).toEqual(data)
  })
})
