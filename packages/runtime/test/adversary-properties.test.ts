/**
 * Property tests of one round under attack: random mixes of catalogue behaviours among peers'
 * real compressed updates, through the receiver's admission and aggregation (admitUpdates,
 * aggregateUpdates, as every node runs them). Nothing throws, malformed or wrong-codec updates
 * are rejected, honest ones kept, and the aggregate is bitwise the same whatever order the
 * updates arrived in.
 */
import { describe, expect, test } from "bun:test"
import { Effect, Either, FastCheck as fc } from "effect"
import type { UpdateMessage } from "@covenant/sparseloco"
import { admitUpdates, aggregateUpdates, catalogue, encodeUpdate, runAddress } from "../src/index.ts"
import { mulberry32 } from "@covenant/gpu-webgpu"
import type { Directory, Participant, PublishContext } from "../src/index.ts"
import { HOTKEY, honestUpdate as honestUpdateIn, manifest, spec } from "./adversary-fixtures.ts"

const WINDOW = 9
const UIDS = [1, 2, 3, 4, 5, 6]
/** The chain's view: every uid registered under the one hotkey the updates carry. */
const dir: Directory = {
  participants: new Map(UIDS.map((uid): [number, Participant] => [uid, { uid, hotkey: HOTKEY, stake: 0, validatorPermit: false, location: { bucket: `b${uid}` }, role: "peer" }])),
  leader: undefined,
}
/** The receiver's boundary (the sample digest check needs data: left out here, covered by node-admission). */
const admit = (delivered: ReadonlyArray<{ uid: number; payload: Uint8Array }>) =>
  Effect.runPromise(admitUpdates(delivered, { spec, manifest, address: runAddress(spec), window: WINDOW, dir }))

/** An honest update of the round's window. */
const honestUpdate = (uid: number, seed: number): UpdateMessage => honestUpdateIn(uid, WINDOW, seed)

/** Kinds whose effect is in what they upload (timing and training kinds are swarm matters). */
const KINDS = ["honest", "sign-flip", "scaled", "noise", "nan", "inf", "wrong-shape", "wrong-codec", "copycat", "stale", "free-rider"] as const
type Kind = (typeof KINDS)[number]
/** What the receiver must reject whatever else is in the round. */
const MALFORMED: ReadonlySet<Kind> = new Set(["nan", "inf", "wrong-shape", "wrong-codec"])

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
  test("nothing throws; malformed and wrong-codec rejected, the rest kept; the aggregate is finite and the same in any arrival order", async () => {
    await fc.assert(fc.asyncProperty(mixes, fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), async (kinds, seed, shuffleSeed) => {
      const delivered = await uploads(kinds, seed)
      const decoded = (await admit(delivered)).accepted
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
      const next = mulberry32(shuffleSeed)
      const shuffled = [...delivered].sort(() => next() - 0.5)
      expect(bitsOf(aggregateUpdates((await admit(shuffled)).accepted, manifest, spec.compression))).toEqual(bitsOf(G))
    }), { numRuns: 40 })
  }, 120_000)

  // One wrong-codec peer used to freeze the model (aggregation refuses peers that disagree on
  // chunk, so every tensor was left out); the boundary now rejects it as that peer's update.
  test("one wrong-codec peer among honest ones is rejected, and every tensor still aggregates", async () => {
    const delivered = await uploads(["honest", "honest", "wrong-codec"], 7)
    const admitted = await admit(delivered)
    expect(admitted.rejected.map((r) => [r.uid, r.reason._tag])).toEqual([[3, "WrongChunk"]])
    const G = aggregateUpdates(admitted.accepted, manifest, spec.compression)
    expect(G === null ? 0 : G.size).toBe(manifest.tensors.length)
  })
})
