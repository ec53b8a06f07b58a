import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import { aggregate, compress, decode, defaultParams, denseAt, encode, meanDense, sparseAt } from "../src/index.ts"
import type { UpdateMessage } from "../src/index.ts"
import { randn } from "./reference.ts"

const meta = (uid: number) => ({
  runId: "r",
  window: 1,
  uid,
  hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
  sampleDigest: "",
  sampleCount: 1,
})

describe("per-tensor regrouping of decoded peers", () => {
  test("sparseAt feeds aggregate the same updates the peers compressed; denseAt feeds the DiLoCo mean", () => {
    const peers = [1, 2, 3].map((seed) => {
      const u = Either.getOrThrow(compress(randn(4096, seed), randn(4096, seed + 9), [64, 64], defaultParams, "w")).update
      const d = randn(10, seed + 20)
      const msg: UpdateMessage = { meta: meta(seed), tensors: [{ coding: "rice", update: u }, { coding: "f32", dense: { name: "b", shape: [10], values: d } }] }
      return { u, d, bytes: Either.getOrThrow(encode(msg)) }
    })
    const msgs = peers.map((p) => Either.getOrThrow(decode(p.bytes)))
    const direct = Either.getOrThrow(aggregate(peers.map((p) => p.u))).dense
    const viaWire = Either.getOrThrow(aggregate(Either.getOrThrow(sparseAt(msgs, 0)))).dense
    expect(viaWire).toEqual(direct)
    const mean = new Float32Array(10)
    meanDense(Either.getOrThrow(denseAt(msgs, 1)).map((t) => t.values), mean)
    expect(mean[0]).toBeCloseTo((peers[0]!.d[0]! + peers[1]!.d[0]! + peers[2]!.d[0]!) / 3, 6)
    expect(Either.isLeft(sparseAt(msgs, 1))).toBe(true)
    expect(Either.isLeft(denseAt(msgs, 0))).toBe(true)
    expect(Either.isLeft(sparseAt(msgs, 2))).toBe(true)
  })
})
