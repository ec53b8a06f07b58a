/**
 * Checkpoints are signed leader objects: they load back (model and outer momentum), only `keep`
 * are kept, and a joiner refuses a tampered model, a tampered or forged `_LATEST.json`, or one
 * signed by anyone but the leader the chain names.
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Exit, Layer } from "effect"
import { Chain, identityFromSecret, layerLocal } from "@covenant/chain"
import { debug } from "@covenant/dsl"
import { initLlamaParameters } from "@covenant/gpu-webgpu"
import { latestKey, layerFileSystem, publishSigned, sealEnvelope, Transport } from "@covenant/transport"
import { ensureValidatorPermit, initialModel, loadLatestCheckpoint, paramsDigest, publishCheckpoint, publishStartWindow, runAddress } from "../src/index.ts"

const spec = debug()
const address = runAddress(spec)
const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : "no failure"

test("signed checkpoints: model and momentum load back, keep is honoured, tampered or forged objects are refused by a joiner", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-ckpt-"))
  try {
    const leader = await Effect.runPromise(identityFromSecret("//ckpt-leader"))
    const mallory = await Effect.runPromise(identityFromSecret("//ckpt-mallory"))
    const own = { bucket: "covenant-leader" }
    const layer = Layer.mergeAll(
      layerLocal({ dir: join(dir, "chain"), identity: leader, params: { blockIntervalMs: 50, blocksPerWindow: 5, weightsRateLimit: 0, permitStake: 10 }, serve: false }),
      layerFileSystem(join(dir, "store")),
    )
    const program = Effect.gen(function* () {
      const transport = yield* Transport
      const chain = yield* Chain
      yield* ensureValidatorPermit({ own, commitment: { _tag: "Filesystem", dir: own.bucket }, identity: leader })
      const uid = (yield* chain.uid)!
      const me = { own, uid, identity: leader }
      const source = { location: own, uid, hotkey: leader.hotkey.address }
      // A permit holder leads once it publishes the run (its start window).
      yield* publishStartWindow(me, address, 3)
      expect(yield* loadLatestCheckpoint(source, address, spec.model)).toBeUndefined()
      const momentumOf = (w: number) => new Map([...initLlamaParameters(spec.model, 100 + w)].map(([n, v]) => [n, v.map((x) => x * 0.01)]))
      for (const w of [5, 10, 15]) yield* publishCheckpoint(me, address, spec.model, w, { params: initLlamaParameters(spec.model, w), momentum: momentumOf(w) }, 2)
      const latest = (yield* loadLatestCheckpoint(source, address, spec.model))!
      expect(latest.window).toBe(15)
      expect(paramsDigest(latest.params)).toBe(paramsDigest(initLlamaParameters(spec.model, 15)))
      expect(paramsDigest(latest.momentum!)).toBe(paramsDigest(momentumOf(15)))
      const kept = (yield* transport.list(own, "checkpoints/1/")).map((o) => o.key).filter((k) => k.endsWith(".safetensors"))
      expect(kept).toEqual([
        "checkpoints/1/10/model.safetensors", "checkpoints/1/10/outer_momentum.safetensors",
        "checkpoints/1/15/model.safetensors", "checkpoints/1/15/outer_momentum.safetensors",
      ])
      // A joiner (no saved state) starts from it, momentum included.
      const joined = yield* initialModel(spec, address, undefined, 3)
      expect([joined.from, joined.window, paramsDigest(joined.params), paramsDigest(joined.momentum!)]).toEqual(["checkpoint", 15, paramsDigest(latest.params), paramsDigest(momentumOf(15))])

      const modelKey = "checkpoints/1/15/model.safetensors"
      const good = yield* transport.get(own, modelKey)
      const goodLatest = yield* transport.get(own, latestKey("1"))
      const refused = () =>
        Effect.gen(function* () {
          const direct = yield* Effect.exit(loadLatestCheckpoint(source, address, spec.model))
          const joiner = yield* Effect.either(initialModel(spec, address, undefined, 3))
          return { direct: failureTag(direct), joiner: Either.isLeft(joiner) ? joiner.left.reason.split(":")[0] : "loaded" }
        })
      // 1. one bit of the model flipped
      const flipped = good.slice()
      flipped[flipped.length - 100] = flipped[flipped.length - 100]! ^ 1
      yield* transport.put(own, modelKey, flipped)
      expect(yield* refused()).toEqual({ direct: "UntrustedCheckpoint", joiner: "UntrustedCheckpoint" })
      yield* transport.put(own, modelKey, good)
      expect((yield* loadLatestCheckpoint(source, address, spec.model))!.window).toBe(15)
      // 2. a plain (unsigned) _LATEST.json, as the old code wrote it
      yield* transport.put(own, latestKey("1"), new TextEncoder().encode(JSON.stringify({ window: 10, key: "checkpoints/1/10/model.safetensors" })))
      expect(yield* refused()).toEqual({ direct: "UntrustedCheckpoint", joiner: "UntrustedCheckpoint" })
      // 3. a _LATEST.json and model signed by another hotkey for the leader's context
      const forged = sealEnvelope({ runId: address.runId, window: 0, uid, kind: "checkpoint-latest" }, new TextEncoder().encode(JSON.stringify({ window: 99, key: "checkpoints/1/99/model.safetensors" })), mallory.hotkey)
      yield* transport.put(own, latestKey("1"), forged)
      yield* publishSigned({ at: own, key: "checkpoints/1/99/model.safetensors", context: { runId: address.runId, window: 99, uid, kind: "checkpoint" }, payload: flipped, signer: mallory.hotkey })
      expect(yield* refused()).toEqual({ direct: "UntrustedCheckpoint", joiner: "UntrustedCheckpoint" })
      // 4. the leader's own model bytes re-signed as a pointer: the kind binds each object to what it is
      yield* transport.put(own, latestKey("1"), sealEnvelope({ runId: address.runId, window: 15, uid, kind: "checkpoint" }, good, leader.hotkey))
      expect((yield* refused()).direct).toBe("UntrustedCheckpoint")
      yield* transport.put(own, latestKey("1"), goodLatest)
      expect((yield* loadLatestCheckpoint(source, address, spec.model))!.window).toBe(15)
    })
    await Effect.runPromise(Effect.scoped(Effect.provide(program, layer)))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
