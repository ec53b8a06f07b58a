import { describe, expect, test } from "bun:test"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { decodeNpy, encodeNpy } from "../src/io/index.ts"
import { hfConfigFromSpec, initLlamaParameters, LlamaModel, saveCheckpoint, shiftedTargets } from "../src/model/index.ts"
import type { LlamaSpec } from "../src/model/index.ts"
import { allowNoGpu, cpuEngine, llamaHfCases, randomIds, vectorDir, webgpuEngine } from "./model-engines.ts"

const bin = (name: string) => join(import.meta.dir, "..", "bin", name)

const run = (script: string, args: string[]) => {
  const r = spawnSync(process.execPath, [bin(script), ...args], { encoding: "utf8" })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const lossOf = (stdout: string): number => {
  const m = /^loss: (\S+)$/m.exec(stdout)
  if (m === null) throw new Error(`no loss line in ${JSON.stringify(stdout)}`)
  return Number(m[1])
}

const readLogits = (path: string) => Either.getOrThrow(decodeNpy(new Uint8Array(readFileSync(path))))

const maxAbsDiff = (a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>) => {
  expect(a.length).toBe(b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]!) - Number(b[i]!)))
  return m
}

// without an adapter the webgpu run fails (with NoAdapterError on stderr) unless COVENANT_ALLOW_NO_GPU=1
const gpu = await webgpuEngine()
const noAdapter = "_tag" in gpu

describe("bin/hf-eval on the PyTorch vectors", () => {
  test("there is at least one case", () => expect(llamaHfCases.length).toBeGreaterThan(0))
  for (const caseDir of llamaHfCases) {
    const name = caseDir.split("/").pop()
    for (const backend of ["cpu", "webgpu"] as const) {
      const skip = backend === "webgpu" && noAdapter && allowNoGpu
      test.skipIf(skip)(`${name} --backend ${backend}: loss to 1e-6 relative, logits to 1e-5 absolute`, () => {
        const expectedLoss: number = JSON.parse(readFileSync(join(caseDir, "expected.json"), "utf8")).loss
        const expectedLogits = readLogits(join(caseDir, "expected_logits.npy"))
        const tokens = readLogits(join(caseDir, "tokens.npy"))
        const out = join(mkdtempSync(join(tmpdir(), "hf-eval-")), "logits.npy")
        const r = run("hf-eval.ts", [caseDir, "--backend", backend, "--logits-out", out])
        expect(r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("Warning:"))).toEqual([])
        expect(r.status).toBe(0)
        expect(r.stdout).toContain(`backend: ${backend}`)
        expect(r.stdout).toContain(`tokens: [${tokens.shape.join(", ")}]`)
        expect(Math.abs(lossOf(r.stdout) - expectedLoss) / expectedLoss).toBeLessThan(1e-6)
        const logits = readLogits(out)
        expect(logits.shape).toEqual(expectedLogits.shape)
        expect(maxAbsDiff(logits.data, expectedLogits.data)).toBeLessThan(1e-5)
      }, 60_000)
    }
  }
})

describe("bin/hf-eval on bad input", () => {
  test("bad input: typed errors on stderr and exit status 1", () => {
    const missing = run("hf-eval.ts", [join(tmpdir(), "no-such-model-folder")])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain("FileIoError")
    const dir = mkdtempSync(join(tmpdir(), "hf-bad-"))
    const config = JSON.parse(readFileSync(join(vectorDir, "config.json"), "utf8"))
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, rope_scaling: { rope_type: "yarn", factor: 4 } }))
    const scaled = run("hf-eval.ts", [dir])
    expect(scaled.status).toBe(1)
    expect(scaled.stderr).toContain("HfConfigError: rope_scaling")
    const usage = run("hf-eval.ts", [vectorDir, "--backend", "tpu"])
    expect(usage.status).toBe(1)
    expect(usage.stderr).toContain("UsageError")
    const tokens = join(dir, "tokens.npy")
    writeFileSync(tokens, Either.getOrThrow(encodeNpy(new Int32Array([1, 97]), [1, 2])))
    const outOfVocab = run("hf-eval.ts", [vectorDir, "--tokens", tokens])
    expect(outOfVocab.status).toBe(1)
    expect(outOfVocab.stderr).toContain("ModelInputError: token id 97")
  }, 60_000)
})

describe("bin/hf-export then bin/hf-eval on a fresh model of another shape", () => {
  // tied embeddings and plain multi-head attention: the other branches of the HF definition
  const spec: LlamaSpec = {
    family: "llama", dim: 48, nLayers: 3, nHeads: 3, nKvHeads: 3, ffnDim: 80, vocabSize: 50, seqLen: 32,
    ropeTheta: 500000, normEps: 1e-6, tiedEmbeddings: true, dtype: "float32"
  }

  test("the exported folder evaluates to the in-process forward", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hf-export-"))
    const params = initLlamaParameters(spec, 31)
    await Effect.runPromise(saveCheckpoint(join(dir, "ckpt.safetensors"), spec, params))
    const exported = run("hf-export.ts", [join(dir, "ckpt.safetensors"), join(dir, "hf")])
    expect(exported.stderr).toBe("")
    expect(exported.status).toBe(0)
    expect(JSON.parse(readFileSync(join(dir, "hf", "config.json"), "utf8"))).toEqual(hfConfigFromSpec(spec))

    const [batch, seqLen] = [3, 20]
    const ids = randomIds(batch * seqLen, spec.vocabSize, 32)
    writeFileSync(join(dir, "tokens.npy"), Either.getOrThrow(encodeNpy(ids, [batch, seqLen])))
    const r = run("hf-eval.ts", [join(dir, "hf"), "--tokens", join(dir, "tokens.npy"), "--logits-out", join(dir, "logits.npy")])
    expect(r.status).toBe(0)

    const e = cpuEngine()
    const model = LlamaModel.create(e, spec, params)
    const logits = await e.read(e.noGrad(() => e.tidy(() => model.forward(ids, batch, seqLen))))
    const got = readLogits(join(dir, "logits.npy"))
    expect(got.shape).toEqual([batch, seqLen, spec.vocabSize])
    expect(maxAbsDiff(got.data, logits)).toBeLessThan(1e-6)
    // the printed loss is the host-side mean cross-entropy of those logits against the shifted ids
    const targets = shiftedTargets(ids, batch, seqLen)
    let total = 0
    let count = 0
    for (let row = 0; row < batch * seqLen; row++) {
      if (targets[row] === -100) continue
      const z = logits.subarray(row * spec.vocabSize, (row + 1) * spec.vocabSize)
      const max = Math.max(...z)
      total += max + Math.log(z.reduce((s, x) => s + Math.exp(x - max), 0)) - z[targets[row]!]!
      count++
    }
    expect(Math.abs(lossOf(r.stdout) - total / count) / (total / count)).toBeLessThan(1e-6)
  }, 60_000)
})
