/**
 * The trust boundary in a running swarm (filesystem store, local chain, debug model):
 *
 * 1. Two rogue participants join next to three honest peers: one compresses with chunk 32
 *    instead of the spec's 64 (its updates decode fine), one uploads an object past the largest
 *    legal update. Every node rejects both *as those peers' updates* (WrongChunk, TooLarge), the
 *    honest updates step every tensor in every window, and all nodes stay bitwise identical.
 * 2. DiLoCo (dense updates, outer Nesterov): a peer joining late starts from the leader's signed
 *    checkpoint, which carries the outer momentum, and is bitwise identical to the others.
 */
import { expect, test } from "bun:test"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Either, Fiber, Layer } from "effect"
import { identityFromSecret, layerLocalClient, readOwnerUrl } from "@covenant/chain"
import { derive } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { initLlamaParameters } from "@covenant/gpu-webgpu"
import { layerFileSystem } from "@covenant/transport"
import {
  cloneParams, compressDelta, currentWindow, encodeUpdate, joinNetwork, modelManifest, publishGradient, runAddress, runSwarm, updateCap, waitForWindow,
} from "@covenant/runtime"
import { logEvent, roundsOf, swarmTestSpec, validatorRounds } from "./swarm-support.ts"

/** A participant that registers, commits a bucket as a peer and publishes a bad object in every window's upload interval. */
const rogue = (spec: RunSpec, workDir: string, name: string, payloadFor: (window: number, uid: number, hotkey: string) => Uint8Array) =>
  Effect.gen(function* () {
    const chainDir = join(workDir, "chain")
    while (!existsSync(join(chainDir, "owner.json"))) yield* Effect.sleep(Duration.millis(50))
    const url = yield* readOwnerUrl(chainDir)
    const identity = yield* identityFromSecret(`//covenant-rogue-${name}`)
    const layer = Layer.mergeAll(layerFileSystem(join(workDir, "store")), layerLocalClient(url, identity))
    const address = runAddress(spec)
    yield* Effect.provide(
      Effect.gen(function* () {
        const own = { bucket: `covenant-rogue-${name}` }
        const uid = yield* joinNetwork(own, { _tag: "Filesystem", dir: own.bucket }, "peer")
        for (;;) {
          const w = yield* currentWindow
          yield* waitForWindow(w + 1, 50)
          yield* Effect.ignore(publishGradient({ identity, uid, own }, address, w, payloadFor(w, uid, identity.hotkey.address)))
        }
      }),
      layer,
    )
  })

test("rogue codec and oversized objects are rejected as those peers' updates; the honest ones step every tensor, identically everywhere", async () => {
  const spec = await swarmTestSpec()
  // Chunk 32 with a quarter of the spec's top-k: as many values as an honest update, so it passes
  // the size cap and decodes fine; only the codec check tells it apart.
  if (spec.compression.kind !== "sparseloco") throw new Error("the swarm test spec compresses")
  const chunk32 = await Effect.runPromise(derive(spec, { compression: { chunk: 32, topk: spec.compression.topk / 4 } }))
  const manifest = modelManifest(spec.model)
  const base = initLlamaParameters(spec.model, 3)
  const delta = new Map([...base].map(([n, v]) => [n, v.map((_, i) => Math.fround(Math.cos(i) * 1e-3))]))
  const wire32 = Effect.runSync(compressDelta({ params: cloneParams(base), ef: null, momentum: null }, delta, manifest, chunk32.compression))
  const address = runAddress(spec)
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-trust-"))
  try {
    const rounds = 6
    const { startWindow: s, events } = await Effect.runPromise(Effect.gen(function* () {
      const rogues = yield* Effect.fork(Effect.all([
        rogue(spec, workDir, "chunk32", (window, uid, hotkey) =>
          Either.getOrThrow(encodeUpdate({ runId: address.runId, window, uid, hotkey, sampleDigest: "", sampleCount: 0 }, wire32))),
        rogue(spec, workDir, "huge", (window) => new Uint8Array(updateCap(spec, manifest, address, window)!).fill(7)),
      ], { concurrency: "unbounded" }))
      // Equal scoring keeps the rogues listed (the Gauntlet would drop them within a few windows),
      // so every window tests admission on every node; the Gauntlet has its own swarm test.
      const result = yield* runSwarm({ spec, peers: 3, rounds, workDir, scoring: "equal", onEvent: logEvent(Date.now()) })
      yield* Fiber.interrupt(rogues)
      return result
    }))
    const uidOf = new Map(events.flatMap((e) => (e._tag === "Joined" ? [[e.name, e.uid] as const] : [])))
    const byWindow = validatorRounds(events)
    const all = roundsOf(events)
    const reasonsAt = (w: number) => byWindow.get(w)!.rejected.map((r) => r.reason._tag).sort()
    const honest = ["peer-0", "peer-1", "peer-2"].map((n) => uidOf.get(n)!)
    // By the last window the refreshed list names all three honest peers.
    expect(honest.every((u) => byWindow.get(s + rounds - 1)!.gathered.includes(u))).toBe(true)
    let windowsWithBoth = 0
    for (let w = s; w < s + rounds; w++) {
      const v = byWindow.get(w)!
      // Every window steps every tensor, with every honest peer the list names and never a rogue (an
      // honest peer that registered after the first list waits for a refreshed one, as rogues do).
      expect(v.stepped).toBe(true)
      expect([...v.gathered].sort((a, b) => a - b)).toEqual(v.expected.filter((u) => honest.includes(u)).sort((a, b) => a - b))
      const rejectedUids = v.rejected.map((r) => r.uid)
      for (const u of v.gathered) expect(rejectedUids).not.toContain(u)
      if (reasonsAt(w).join(",") === "TooLarge,WrongChunk") windowsWithBoth++
      // Each peer saw the same rejections and holds the validator's model, bit for bit.
      for (const e of all.filter((r) => r.role === "peer" && r.window === w)) {
        expect({ name: e.name, w, digest: e.digest, stepped: e.stepped }).toEqual({ name: e.name, w, digest: v.digest, stepped: true })
        expect(e.rejected.map((r) => r.reason._tag).sort()).toEqual(reasonsAt(w))
      }
    }
    // Once the leader's peer list names them (at most PEER_LIST_LEAD windows after they joined), both rogues are rejected each window.
    expect(windowsWithBoth).toBeGreaterThanOrEqual(rounds - 3)
    const last = byWindow.get(s + rounds - 1)!
    const chunkRejection = last.rejected.find((r) => r.reason._tag === "WrongChunk")!
    expect(chunkRejection.reason).toMatchObject({ chunk: 32, expected: 64 })
    expect([...uidOf.values()]).not.toContain(chunkRejection.uid)
    expect(events.some((e) => e._tag === "Diverged")).toBe(false)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}, 150_000)

test("DiLoCo: a late joiner starts from the leader's signed checkpoint with its outer momentum and is identical to the others", async () => {
  const spec = await Effect.runPromise(derive(await swarmTestSpec(), {
    compression: { kind: "none" },
    outerOptimizer: { kind: "sgd", lr: { kind: "constant", value: 0.6 }, momentum: 0.9, nesterov: true },
    checkpointing: { everyOuterSteps: 2, keep: 2 },
  }))
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-diloco-"))
  try {
    const rounds = 7
    const { startWindow: s, events } = await Effect.runPromise(runSwarm({
      spec, peers: 2, rounds, workDir, churn: [{ round: 4, action: "start", peer: 2 }], onEvent: logEvent(Date.now()),
    }))
    const byWindow = validatorRounds(events)
    for (let w = s; w < s + rounds; w++) expect(byWindow.get(w)?.stepped).toBe(true)
    const joinerRounds = roundsOf(events).filter((e) => e.name === "peer-2")
    expect(joinerRounds.length).toBeGreaterThanOrEqual(1)
    for (const e of joinerRounds) expect({ w: e.window, digest: e.digest }).toEqual({ w: e.window, digest: byWindow.get(e.window)!.digest })
    // It started from a checkpoint (not the init: its catch-up starts after a checkpointed window), momentum included.
    const caught = events.find((e) => e._tag === "CaughtUp" && e.name === "peer-2")
    if (caught?._tag === "CaughtUp") {
      expect(caught.from).toBeGreaterThan(s)
      expect(caught.debugDistance).toBe(0)
    } else {
      // Joined exactly at a checkpointed window: nothing to replay.
      expect(joinerRounds[0]!.window).toBeGreaterThan(s + 1)
    }
    expect(events.some((e) => e._tag === "Diverged")).toBe(false)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}, 150_000)
