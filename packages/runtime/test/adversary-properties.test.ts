/**
 * Property tests of one round under attack: random mixes of catalogue behaviours among peers'
 * real compressed updates, through the receiver's decode and aggregation (decodeDelivered,
 * aggregateUpdates, as every node runs them). Nothing throws, malformed updates are dropped,
 * honest ones kept, and the aggregate is bitwise the same whatever order the updates arrived in.
 */
import { describe, expect, test } from "bun:test"
import { Effect, Either, FastCheck as fc } from "effect"
import { debug } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { compress } from "@covenant/sparseloco"
import type { UpdateMessage, WireTensor } from "@covenant/sparseloco"
import { aggregateUpdates, catalogue, decodeDelivered, encodeUpdate, modelManifest, rng, runAddress } from "../src/index.ts"
import type { PublishContext } from "../src/index.ts"

const spec: RunSpec = debug()
const manifest = modelManifest(spec.model)
const HOTKEY = "5GrwvaDF5zxW5gZ2kHh4tBmPLdKN9aD3ZUtKTKhYAZWKZt6Y"
const WINDOW = 9

const honestUpdate = (uid: number, seed: number): UpdateMessage => {
  const next = rng(seed)
  const c = spec.compression
  if (c.kind !== "sparseloco") throw new Error("the debug preset compresses")
  const tensors: WireTensor[] = manifest.tensors.map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1)
    const delta = Float32Array.from({ length: n }, () => (next() - 0.5) * 1e-3)
    return { coding: c.indexCoding, update: Either.getOrThrow(compress(new Float32Array(n), delta, shape, c, name)).update }
  })
  return { meta: { runId: spec.name, window: WINDOW, uid, hotkey: HOTKEY, sampleDigest: "ab", sampleCount: 4 }, tensors }
}

/** Kinds whose effect is in what they upload (timing and training kinds are swarm matters). */
const KINDS = ["honest", "sign-flip", "scaled", "noise", "nan", "inf", "wrong-shape", "copycat", "stale", "free-rider"] as const
type Kind = (typeof KINDS)[number]
/** What the receiver must drop whatever else is in the round. */
const MALFORMED: ReadonlySet<Kind> = new Set(["nan", "inf", "wrong-shape"])

/** Every peer's uploaded bytes for a mix of kinds (uid = index + 1). */
const uploads = (kinds: ReadonlyArray<Kind>, seed: number): Promise<Array<{ uid: number; payload: Uint8Array }>> =>
  Effect.runPromise(Effect.gen(function* () {
    const honest = kinds.map((_, i) => honestUpdate(i + 1, seed * 31 + i))
    const old = kinds.map((_, i) => ({ ...honestUpdate(i + 1, seed * 17 + i + 1000), meta: { ...honest[i]!.meta, window: WINDOW - 2 } }))
    const out: Array<{ uid: number; payload: Uint8Array }> = []
    for (let i = 0; i < kinds.length; i++) {
      const uid = i + 1
      const kind = kinds[i]!
      if (kind === "honest") {
        out.push({ uid, payload: Either.getOrThrow(encodeUpdate(honest[i]!.meta, honest[i]!.tensors)) })
        continue
      }
      const now = Date.now()
      const ctx: PublishContext = {
        name: `peer-${i}`, uid, hotkey: HOTKEY, window: WINDOW, spec, address: runAddress(spec), manifest,
        peers: kinds.map((_, j) => j + 1), now: Effect.sync(() => Date.now()), upload: { start: now, end: now + 20 },
        // The store: this window's honest uploads of the others, and everyone's of two windows ago.
        readUpdate: (u, w) => Effect.succeed(w === WINDOW - 2 ? old[u - 1] : w === WINDOW && u !== uid && kinds[u - 1] === "honest" ? honest[u - 1] : undefined),
      }
      const o = yield* catalogue[kind]!.publish!(ctx, honest[i]!)
      if (o._tag === "Withhold") continue
      out.push({ uid, payload: o._tag === "PublishBytes" ? o.bytes : Either.getOrThrow(encodeUpdate(o.update.meta, o.update.tensors)) })
    }
    return out
  }))

const bitsOf = (G: ReturnType<typeof aggregateUpdates>): string[] =>
  G === null ? [] : [...G].map(([name, v]) => `${name}:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")}`)

const mixes = fc.array(fc.constantFrom(...KINDS), { minLength: 2, maxLength: 6 })

describe("a round under attack", () => {
  test("nothing throws; malformed dropped, well-formed kept; the aggregate is finite and the same in any arrival order", async () => {
    await fc.assert(fc.asyncProperty(mixes, fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), async (kinds, seed, shuffleSeed) => {
      const delivered = await uploads(kinds, seed)
      const decoded = decodeDelivered(delivered, manifest, WINDOW)
      const kept = new Set(decoded.map((d) => d.uid))
      delivered.forEach(({ uid }) => expect({ uid, kind: kinds[uid - 1], kept: kept.has(uid) }).toEqual({ uid, kind: kinds[uid - 1], kept: !MALFORMED.has(kinds[uid - 1]!) }))
      const G = aggregateUpdates(decoded, manifest, spec.compression)
      if (decoded.length > 0) {
        expect(G).not.toBeNull()
        // Every tensor aggregates (all well-formed updates share the spec's codec) and is finite.
        expect([...G!.keys()]).toEqual(manifest.tensors.map((t) => t.name))
        for (const v of G!.values()) expect(v.every(Number.isFinite)).toBe(true)
      }
      // Another node receives the same updates in another order: bitwise the same aggregate.
      const next = rng(shuffleSeed)
      const shuffled = [...delivered].sort(() => next() - 0.5)
      expect(bitsOf(aggregateUpdates(decodeDelivered(shuffled, manifest, WINDOW), manifest, spec.compression))).toEqual(bitsOf(G))
    }), { numRuns: 40 })
  }, 120_000)

  // Known weakness, for the trust boundary: the receiver does not check an update's chunk against
  // the spec, and aggregation refuses peers that disagree on chunk (PeerMismatch), so one
  // wrong-codec peer removes every tensor from the aggregate: the model does not move.
  test.failing("one wrong-codec peer among honest ones does not stop the model from moving", async () => {
    const delivered = await uploads(["honest", "honest", "wrong-codec"] as unknown as Kind[], 7)
    const G = aggregateUpdates(decodeDelivered(delivered, manifest, WINDOW), manifest, spec.compression)
    expect(G === null ? 0 : G.size).toBe(manifest.tensors.length)
  })
})
