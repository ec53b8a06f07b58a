import { describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { Either } from "effect"
import { decodeNpy, tokenBatchFromNpy } from "../src/io/index.ts"
import { decodeCheckpoint, initLlamaParameters, LlamaModel, shiftedTargets, specFromHfConfig } from "../src/model/index.ts"
import { cpuEngine, debugSpec, randomIds, thrown, tinySpec, vectorDir } from "./model-engines.ts"

const loadVector = () => {
  const spec = Either.getOrThrow(specFromHfConfig(JSON.parse(readFileSync(`${vectorDir}/config.json`, "utf8"))))
  const { parameters } = Either.getOrThrow(decodeCheckpoint(new Uint8Array(readFileSync(`${vectorDir}/model.safetensors`)), spec))
  const tokens = Either.getOrThrow(tokenBatchFromNpy(Either.getOrThrow(decodeNpy(new Uint8Array(readFileSync(`${vectorDir}/tokens.npy`))))))
  const expected = Either.getOrThrow(decodeNpy(new Uint8Array(readFileSync(`${vectorDir}/expected_logits.npy`)))).data
  const expectedLoss: number = JSON.parse(readFileSync(`${vectorDir}/expected.json`, "utf8")).loss
  return { spec, parameters, tokens, expected, expectedLoss }
}

describe("LLaMA forward (CPU engine)", () => {
  test("matches the PyTorch HF forward of the shared GQA case", async () => {
    const { spec, parameters, tokens, expected, expectedLoss } = loadVector()
    const e = cpuEngine()
    const model = LlamaModel.create(e, spec, parameters)
    const { logits, loss } = e.noGrad(() => e.tidy(() => {
      const logits = model.forward(tokens.ids, tokens.batch, tokens.seqLen)
      return { logits, loss: model.lossFromLogits(logits, tokens.ids, tokens.batch, tokens.seqLen) }
    }))
    const got = await e.read(logits)
    expect(got.length).toBe(expected.length)
    let maxDiff = 0
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - Number(expected[i]!)))
    expect(maxDiff).toBeLessThan(1e-5)
    expect(Math.abs((await e.read(loss))[0]! - expectedLoss) / expectedLoss).toBeLessThan(1e-6)
  })

  test("the loss is the mean cross-entropy of the shifted targets (host recomputation)", async () => {
    const e = cpuEngine()
    const model = LlamaModel.create(e, debugSpec, initLlamaParameters(debugSpec, 5))
    const ids = randomIds(3 * 10, debugSpec.vocabSize, 9)
    const logitsT = e.noGrad(() => e.tidy(() => model.forward(ids, 3, 10)))
    const lossT = e.noGrad(() => e.tidy(() => model.loss(ids, 3, 10)))
    const logits = await e.read(logitsT)
    const targets = shiftedTargets(ids, 3, 10)
    let total = 0
    let count = 0
    for (let row = 0; row < 30; row++) {
      if (targets[row] === -100) continue
      const r = logits.subarray(row * 256, (row + 1) * 256)
      const max = Math.max(...r)
      const lse = max + Math.log(r.reduce((s, x) => s + Math.exp(x - max), 0))
      total += lse - r[targets[row]!]!
      count++
    }
    expect(count).toBe(27)
    expect((await e.read(lossT))[0]!).toBeCloseTo(total / count, 5)
  })

  test("every parameter's gradient matches a finite difference of the loss along it", async () => {
    // Directional check per tensor: d/dh L(w + h g) at h = 0 is |g|^2, so a central difference
    // along the gradient itself tests the whole backward wiring with a strong, low-noise signal.
    const spec = { ...tinySpec, nLayers: 2, tiedEmbeddings: true }
    const e = cpuEngine()
    const params = initLlamaParameters(spec, 13)
    const model = LlamaModel.create(e, spec, params)
    const ids = randomIds(2 * 12, spec.vocabSize, 14)
    const loss = e.tidy(() => {
      const l = model.loss(ids, 2, 12)
      e.backward(l)
      return l
    })
    loss.dispose()
    const lossAt = async () => (await e.read(e.noGrad(() => e.tidy(() => model.loss(ids, 2, 12)))))[0]!
    for (const { name } of model.infos) {
      const g = await e.read(model.parameter(name).grad!)
      const w = params.get(name)!
      const norm2 = g.reduce((s, x) => s + x * x, 0)
      const h = 1e-2 / Math.sqrt(norm2)
      model.writeParameters(new Map([[name, w.map((x, i) => x + h * g[i]!)]]))
      const up = await lossAt()
      model.writeParameters(new Map([[name, w.map((x, i) => x - h * g[i]!)]]))
      const down = await lossAt()
      model.writeParameters(new Map([[name, w]]))
      const fd = (up - down) / (2 * h)
      if (Math.abs(fd - norm2) > 0.02 * norm2 + 1e-6) throw new Error(`${name}: finite difference ${fd} vs |g|^2 ${norm2}`)
    }
    expect(model.infos.length).toBe(1 + 2 * 9 + 1)
  })

  test("tied embeddings use the embedding matrix as lm_head; bad ids are typed errors", async () => {
    const spec = { ...debugSpec, tiedEmbeddings: true }
    const e = cpuEngine()
    const params = initLlamaParameters(spec, 2)
    const model = LlamaModel.create(e, spec, params)
    expect(model.infos.map((p) => p.name)).not.toContain("lm_head.weight")
    // the same weights untied, with lm_head a copy of the embedding, must give the same logits
    const untied = LlamaModel.create(e, debugSpec, new Map(params).set("lm_head.weight", params.get("model.embed_tokens.weight")!.slice()))
    const ids = randomIds(8, spec.vocabSize, 1)
    const tiedLogits = await e.read(e.noGrad(() => e.tidy(() => model.forward(ids, 1, 8))))
    const untiedLogits = await e.read(e.noGrad(() => e.tidy(() => untied.forward(ids, 1, 8))))
    expect(tiedLogits).toEqual(untiedLogits)
    // and a different lm_head gives different logits (the comparison above can fail)
    untied.writeParameters(new Map([["lm_head.weight", params.get("model.embed_tokens.weight")!.map((x) => -x)]]))
    expect(await e.read(e.noGrad(() => e.tidy(() => untied.forward(ids, 1, 8))))).not.toEqual(tiedLogits)
    expect(thrown(() => model.forward(new Int32Array([0, 256]), 1, 2))).toEqual({
      tag: "ModelInputError", reason: "token id 256 at 1 is outside the vocabulary [0, 256)"
    })
    expect(thrown(() => model.forward(new Int32Array(3), 1, 2)).reason).toContain("values for shape")
  })
})
