import { describe, expect, test } from "bun:test"
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { debug } from "@covenant/dsl"
import { decodeCheckpoint, initLlamaParameters } from "@covenant/gpu-webgpu"
import { cloneParams, leaderOf, loadNodeState, paramsDigest, saveNodeState, zerosLike } from "../src/index.ts"

const spec = debug().model

describe("node state", () => {
  test("params, EF, outer momentum and AdamW moments round-trip; the model file is an HF-named checkpoint", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-state-"))
    try {
      const params = initLlamaParameters(spec, 3)
      const ef = zerosLike(params)
      for (const v of ef.values()) v.fill(0.25)
      const moments = new Map([["model.norm.weight", { m: new Float32Array(spec.dim).fill(1), v: new Float32Array(spec.dim).fill(2) }]])
      await Effect.runPromise(saveNodeState(dir, spec, { window: 7, params, ef, momentum: null, optimizer: { step: 35, moments } }))
      const loaded = (await Effect.runPromise(loadNodeState(dir, spec)))!
      expect(loaded.window).toBe(7)
      expect(paramsDigest(loaded.params)).toBe(paramsDigest(params))
      expect(paramsDigest(loaded.ef!)).toBe(paramsDigest(ef))
      expect(loaded.momentum).toBeNull()
      expect(loaded.optimizer!.step).toBe(35)
      expect(loaded.optimizer!.moments.get("model.norm.weight")).toEqual(moments.get("model.norm.weight")!)
      const hf = Either.getOrThrow(decodeCheckpoint(new Uint8Array(readFileSync(join(dir, "w7", "model.safetensors")))))
      expect(hf.parameters.has("model.layers.0.self_attn.q_proj.weight")).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a save that died before `_LATEST.json` leaves the previous state in force; no state is undefined", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-state-"))
    try {
      expect(await Effect.runPromise(loadNodeState(dir, spec))).toBeUndefined()
      const params = initLlamaParameters(spec, 3)
      await Effect.runPromise(saveNodeState(dir, spec, { window: 2, params, ef: null, momentum: null, optimizer: null }))
      mkdirSync(join(dir, "w3"))
      writeFileSync(join(dir, "w3", "model.safetensors"), "half a file")
      const loaded = (await Effect.runPromise(loadNodeState(dir, spec)))!
      expect(loaded.window).toBe(2)
      expect(paramsDigest(loaded.params)).toBe(paramsDigest(cloneParams(params)))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a corrupt latest state is a typed error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-state-"))
    try {
      writeFileSync(join(dir, "_LATEST.json"), JSON.stringify({ window: 1, folder: "w1" }))
      mkdirSync(join(dir, "w1"))
      writeFileSync(join(dir, "w1", "model.safetensors"), "garbage")
      const exit = await Effect.runPromise(Effect.either(loadNodeState(dir, spec)))
      expect(Either.isLeft(exit) && exit.left._tag).toBe("StateFailure")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("leader", () => {
  const p = (uid: number, stake: number, validatorPermit: boolean, role: "peer" | "validator" = "validator") =>
    ({ uid, hotkey: `h${uid}`, stake, validatorPermit, location: { bucket: `b-${uid}` }, role })
  test("is the highest-stake declared validator with a permit, the lowest uid on ties, never a peer", () => {
    expect(leaderOf([p(0, 5, true), p(1, 9, true), p(2, 100, false)])?.uid).toBe(1)
    expect(leaderOf([p(3, 9, true), p(1, 9, true)])?.uid).toBe(1)
    expect(leaderOf([p(2, 100, false)])).toBeUndefined()
    expect(leaderOf([p(0, 5, true), p(4, 100, true, "peer")])?.uid).toBe(0)
  })
})
