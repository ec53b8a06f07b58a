/**
 * Strict admission: updates made with other codec settings, for another uid / window / run, with
 * a hotkey the chain does not list, or over other samples are rejected as that peer's update with
 * a typed reason; the honest peers' updates step every tensor.
 */
import { expect, test } from "bun:test"
import { Effect, Either } from "effect"
import { identityFromSecret } from "@covenant/chain"
import { debug, derive } from "@covenant/dsl"
import { initLlamaParameters } from "@covenant/gpu-webgpu"
import { encode } from "@covenant/sparseloco"
import type { WireTensor } from "@covenant/sparseloco"
import {
  admitUpdates, aggregateUpdates, assignedSampleIds, cloneParams, compressDelta, describeRejection, droppedTensors, encodeUpdate, modelManifest, runAddress, steppedAll, updateCap,
} from "../src/index.ts"
import type { Directory, Participant, RoundState } from "../src/index.ts"

const spec = debug()
const manifest = modelManifest(spec.model)
const base = initLlamaParameters(spec.model, 7)
const address = runAddress(spec)
const window = 12
const TOTAL_SAMPLES = 5000
const hotkeys = await Effect.runPromise(Effect.forEach(Array.from({ length: 9 }, (_, uid) => uid), (uid) => Effect.map(Effect.orDie(identityFromSecret(`//admission-${uid}`)), (i) => i.hotkey.address)))

const dir: Directory = {
  participants: new Map(hotkeys.map((hotkey, uid): [number, Participant] => [uid, { uid, hotkey, stake: 0, validatorPermit: false, location: { bucket: `b${uid}` }, role: "peer" }])),
  leader: undefined,
}

const samplesOf = (uid: number, w = window) =>
  Effect.runSync(assignedSampleIds({ totalSamples: TOTAL_SAMPLES }, uid, w, { poolSize: Math.min(spec.data.sampling.poolSize, TOTAL_SAMPLES), samplesPerWindow: spec.data.sampling.samplesPerWindow }))

/** A real update: a delta through a fresh EF buffer with `compression`, over the wire format. */
const wireOf = (uid: number, compression = spec.compression): WireTensor[] => {
  const delta = new Map([...base].map(([n, v]) => [n, v.map((_, i) => Math.fround(Math.sin(uid * 7919 + i) * 1e-3))]))
  const state: RoundState = { params: cloneParams(base), ef: null, momentum: null }
  return Effect.runSync(compressDelta(state, delta, manifest, compression))
}
const metaOf = (uid: number) => {
  const s = samplesOf(uid)
  return { runId: address.runId, window, uid, hotkey: hotkeys[uid]!, sampleDigest: s.digest, sampleCount: s.ids.length }
}
const payload = (uid: number, wire = wireOf(uid), meta = metaOf(uid)) => Either.getOrThrowWith(encodeUpdate(meta, wire), (e) => new Error(e.reason))

test("a wrong-codec, wrong-hotkey, wrong-samples or misaddressed peer is rejected with its typed reason; the others step every tensor", async () => {
  if (spec.compression.kind !== "sparseloco") throw new Error("the debug preset compresses")
  const chunk32 = await Effect.runPromise(derive(spec, { compression: { chunk: 32 } }))
  const packed = await Effect.runPromise(derive(spec, { compression: { indexCoding: spec.compression.indexCoding === "rice" ? "packed12" : "rice" } }))
  const fewer = await Effect.runPromise(derive(spec, { compression: { topk: spec.compression.topk - 2 } }))
  const delivered = [
    { uid: 0, payload: payload(0) },
    { uid: 1, payload: payload(1, wireOf(1, chunk32.compression)) },
    { uid: 2, payload: payload(2) },
    { uid: 3, payload: payload(3, wireOf(3), { ...metaOf(3), hotkey: hotkeys[0]! }) },
    { uid: 4, payload: payload(4, wireOf(4), { ...metaOf(4), sampleDigest: samplesOf(5).digest }) },
    { uid: 5, payload: payload(5, wireOf(5), { ...metaOf(5), window: window - 1 }) },
    { uid: 6, payload: payload(6, wireOf(6, packed.compression)) },
    { uid: 7, payload: payload(7, wireOf(7, fewer.compression)) },
    { uid: 8, payload: new Uint8Array([1, 2, 3]) },
  ]
  const samples = (uid: number, w: number) => Effect.succeed(samplesOf(uid, w))
  const { accepted, rejected } = await Effect.runPromise(admitUpdates(delivered, { spec, manifest, address, window, dir, samples }))
  expect(accepted.map((a) => a.uid)).toEqual([0, 2])
  expect(rejected.map((r) => [r.uid, r.reason._tag])).toEqual([
    [1, "WrongChunk"], [3, "WrongHotkey"], [4, "WrongSamples"], [5, "WrongWindow"], [6, "WrongCoding"], [7, "WrongK"], [8, "Undecodable"],
  ])
  const chunkReason = rejected[0]!.reason
  if (chunkReason._tag !== "WrongChunk") throw new Error("unreachable")
  expect([chunkReason.chunk, chunkReason.expected]).toEqual([32, spec.compression.chunk])
  expect(describeRejection(chunkReason)).toContain("WrongChunk")
  // The admitted ones step every tensor.
  const G = aggregateUpdates(accepted, manifest, spec.compression)
  expect(steppedAll(G, manifest)).toBe(true)
  expect(droppedTensors(G, manifest)).toEqual([])
})

test("without admission the chunk-32 peer knocks tensors out of the step, and the round then does not count as stepped", async () => {
  const chunk32 = await Effect.runPromise(derive(spec, { compression: { chunk: 32 } }))
  const decoded = [0, 1].map((uid) => {
    const bytes = payload(uid, uid === 1 ? wireOf(1, chunk32.compression) : wireOf(0))
    return Effect.runSync(admitUpdates([{ uid, payload: bytes }], { spec: uid === 1 ? chunk32 : spec, manifest, address, window, dir })).accepted[0]!
  })
  const G = aggregateUpdates(decoded, manifest, spec.compression)
  expect(G).not.toBeNull()
  expect(droppedTensors(G, manifest).length).toBeGreaterThan(0)
  expect(steppedAll(G, manifest)).toBe(false)
})

test("updateCap holds every honest update and the wire size of a denser codec exceeds it", async () => {
  const cap = updateCap(spec, manifest, address, window)!
  const honest = payload(0)
  expect(honest.length).toBeLessThan(cap)
  // Dense f32 tensors are far past the sparse cap: a gather stops reading them.
  const dense: WireTensor[] = manifest.tensors.map(({ name, shape }) => ({ coding: "f32", dense: { name, shape, values: base.get(name)! } }))
  expect(Either.getOrThrow(encode({ meta: metaOf(0), tensors: dense })).length).toBeGreaterThan(cap)
})

test("replaying a leader's record skips only the hotkey check (the uid may have been re-registered since)", async () => {
  const stale = { ...metaOf(2), hotkey: hotkeys[8]! }
  const delivered = [{ uid: 2, payload: payload(2, wireOf(2), stale) }]
  const live = await Effect.runPromise(admitUpdates(delivered, { spec, manifest, address, window, dir }))
  expect(live.rejected.map((r) => r.reason._tag)).toEqual(["WrongHotkey"])
  const replay = await Effect.runPromise(admitUpdates(delivered, { spec, manifest, address, window, dir, checkHotkey: false }))
  expect(replay.accepted.map((a) => a.uid)).toEqual([2])
  // Everything else is still checked.
  const chunk32 = await Effect.runPromise(derive(spec, { compression: { chunk: 32 } }))
  const bad = await Effect.runPromise(admitUpdates([{ uid: 1, payload: payload(1, wireOf(1, chunk32.compression)) }], { spec, manifest, address, window, dir, checkHotkey: false }))
  expect(bad.rejected.map((r) => r.reason._tag)).toEqual(["WrongChunk"])
})
