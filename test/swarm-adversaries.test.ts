/**
 * 3 honest peers, a sign-flipper loaded from a behaviour file, a copycat, a NaN poisoner and a
 * late uploader, with a validator, over the filesystem transport and the local chain: every node
 * (attackers included: they step honestly) holds the validator's parameters after each window,
 * the poisoned and late updates are never aggregated, and the copycat's stored update is another
 * peer's update of the same window re-signed as its own.
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect, Either } from "effect"
import { identityFromSecret } from "@covenant/chain"
import { catalogue, decodeUpdate, loadBehaviour, modelManifest, runSwarm, swarmSummary } from "@covenant/runtime"
import { fetchSigned, gradientKey, layerFileSystem } from "@covenant/transport"
import { logEvent, roundsOf, swarmTestSpec, validatorRounds } from "./swarm-support.ts"

test("swarm with adversaries: honest models identical, poison and late uploads never aggregated, copycat copies", async () => {
  const spec = await swarmTestSpec()
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-adv-"))
  const signFlip = await Effect.runPromise(loadBehaviour(resolve(import.meta.dir, "../examples/behaviours/sign-flip.ts")))
  const rounds = 6
  try {
    const { startWindow: s, events } = await Effect.runPromise(runSwarm({
      spec,
      peers: 7,
      rounds,
      workDir,
      behaviours: { 3: signFlip, 4: catalogue["copycat"]!, 5: catalogue["nan"]!, 6: catalogue["late"]! },
      // Equal scoring keeps every eligible peer listed: this test is about the hook, not the Gauntlet
      // (which drops the NaN and late peers from the list after two windows: test/swarm-gauntlet.test.ts).
      scoring: "equal",
      onEvent: logEvent(Date.now()),
    }))
    const uidOf = new Map(events.flatMap((e) => (e._tag === "Joined" ? [[e.name, e.uid] as const] : [])))
    const byWindow = validatorRounds(events)
    const peerRounds = roundsOf(events).filter((e) => e.role === "peer")
    // Every window stepped; every peer round (honest or not) ends on the validator's parameters.
    for (let w = s; w < s + rounds; w++) expect(byWindow.get(w)?.stepped).toBe(true)
    expect(peerRounds.length).toBeGreaterThanOrEqual(7 * (rounds - 1))
    for (const e of peerRounds) expect({ name: e.name, window: e.window, digest: e.digest }).toEqual({ name: e.name, window: e.window, digest: byWindow.get(e.window)!.digest })
    // The NaN and the late peer are listed but never aggregated; the honest ones are, once listed.
    const nanUid = uidOf.get("peer-5")!
    const lateUid = uidOf.get("peer-6")!
    let listed = 0
    for (const v of byWindow.values()) {
      expect(v.gathered).not.toContain(nanUid)
      expect(v.gathered).not.toContain(lateUid)
      if (v.expected.includes(nanUid) && v.expected.includes(lateUid)) listed++
    }
    expect(listed).toBeGreaterThanOrEqual(3)
    // Honest peers are aggregated (on a loaded machine one may miss a window: not asserted per window).
    for (const honest of ["peer-0", "peer-1", "peer-2"]) expect([...byWindow.values()].some((v) => v.gathered.includes(uidOf.get(honest)!))).toBe(true)
    // Weights events carry what Scoring returned.
    expect(events.some((e) => e._tag === "Weights")).toBe(true)
    // The summary: behaviours by uid; the NaN and late peers rejected whenever listed.
    const summary = swarmSummary(events, { "peer-3": "sign-flip.ts", "peer-4": "copycat", "peer-5": "nan", "peer-6": "late" })
    expect(summary.peers.map((p) => `${p.name}:${p.behaviour}`).sort()).toEqual(
      ["peer-0:honest", "peer-1:honest", "peer-2:honest", "peer-3:sign-flip.ts", "peer-4:copycat", "peer-5:nan", "peer-6:late"],
    )
    expect(summary.windows.map((w) => w.window)).toEqual(Array.from({ length: rounds }, (_, i) => s + i))
    for (const w of summary.windows) {
      const v = byWindow.get(w.window)!
      expect(w.aggregated).toEqual([...v.gathered].sort((a, b) => a - b))
      for (const uid of [nanUid, lateUid]) if (v.expected.includes(uid)) expect(w.rejected.map((r) => r.uid)).toContain(uid)
    }
    expect(summary.windows.some((w) => Object.keys(w.weights).length > 0)).toBe(true)

    // The store: the copycat's update of a window is another peer's, relabelled to the copycat.
    const manifest = modelManifest(spec.model)
    const read = (peer: number, window: number) =>
      Effect.gen(function* () {
        const id = yield* identityFromSecret(`//covenant-swarm-peer-${peer}`)
        const uid = uidOf.get(`peer-${peer}`)!
        const got = yield* Effect.either(fetchSigned({
          at: { bucket: `covenant-peer-${peer}` },
          key: gradientKey(window, uid, "1"),
          context: { runId: spec.name, window, uid, kind: "gradient" },
          hotkey: id.hotkey.address,
        }))
        return Either.isLeft(got) ? undefined : Either.getOrUndefined(decodeUpdate(got.right.bytes, manifest))
      }).pipe(Effect.provide(layerFileSystem(join(workDir, "store"))))
    let copied = 0
    for (let w = s; w < s + rounds; w++) {
      const copy = await Effect.runPromise(read(4, w))
      if (copy === undefined) continue
      expect(copy.meta.uid).toBe(uidOf.get("peer-4")!)
      const sources = await Promise.all([0, 1, 2, 3].map((p) => Effect.runPromise(read(p, w))))
      const source = sources.find((u) => u !== undefined && Bun.deepEquals(u.tensors, copy.tensors))
      expect(source).toBeDefined()
      expect(copy.tensors).toEqual(source!.tensors)
      copied++
    }
    // (On a loaded machine the copycat may give up on a window: at least one copy is asserted.)
    expect(copied).toBeGreaterThanOrEqual(1)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}, 200_000)
