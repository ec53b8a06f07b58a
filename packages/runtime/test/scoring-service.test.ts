/**
 * The Gauntlet behind the Scoring seam: its memory survives a validator restart (saved with the
 * node state, restored into a fresh service) and two validators fed the same windows agree on
 * everything they publish; eligibility is not "no validator permit" (#14).
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { debug } from "@covenant/dsl"
import { initLlamaParameters } from "@covenant/gpu-webgpu"
import { eligibleCandidates, eligiblePeers, loadNodeState, makeGauntletScoring, saveNodeState } from "../src/index.ts"
import type { Directory, GauntletWindow, Participant } from "../src/index.ts"

const spec = debug()
const p = { ...spec.participation, reservePeers: 1, peersGathered: 2 }

const windows: GauntletWindow[] = [10, 11, 12, 13].map((w) => ({
  window: w,
  tracked: [1, 2, 3, 4],
  delivered: w === 12 ? [1, 2, 3] : [1, 2, 3, 4],
  invalid: w === 11 ? [3] : [],
  copies: [],
  outliers: [],
  dataChecks: [],
  reference: null,
  evaluations: [1, 2, 4].filter((u) => w !== 12 || u !== 4).map((uid) => ({ uid, gradientScore: 0.01 * uid - 0.015, ownImprovement: 0.02, randomImprovement: 0.01, ownReference: null })),
  sync: [{ uid: 1, score: 1 }, { uid: 2, score: 0.5 }],
}))

const cands = [1, 2, 3, 4].map((uid) => ({ uid, hotkey: `hk${uid}` }))

const published = (s: ReturnType<typeof makeGauntletScoring>) =>
  Effect.runPromise(Effect.all({ weights: s.weights, scores: s.scores, list: s.peerList(13, cands), next: s.chooseEvaluations(14, [1, 2, 3, 4]), snapshot: s.snapshot }))

test("a restarted validator resumes the Gauntlet where it was; validators that saw the same windows agree", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-scoring-"))
  try {
    const a = makeGauntletScoring(p)
    const b = makeGauntletScoring(p)
    for (const o of windows) {
      await Effect.runPromise(a.observe({ window: o.window, expected: [1, 2], delivered: o.delivered, judged: o }))
      await Effect.runPromise(b.observe({ window: o.window, expected: [1, 2], delivered: o.delivered, judged: o }))
    }
    const before = await published(a)
    expect(await published(b)).toEqual(before)
    expect(before.weights.length).toBeGreaterThan(0)
    // peer 1 worsened the loss (0.01 - 0.015 < 0): off the list; 3 was invalid lately: off too.
    expect(before.list.peers).not.toContain(1)
    expect([...before.list.peers, ...before.list.reserve]).not.toContain(3)

    const model = spec.model
    await Effect.runPromise(saveNodeState(dir, model, { window: 13, params: initLlamaParameters(model, 1), ef: null, momentum: null, optimizer: null, scoring: before.snapshot }))
    const loaded = await Effect.runPromise(loadNodeState(dir, model))
    const restarted = makeGauntletScoring(p)
    await Effect.runPromise(restarted.restore(loaded!.scoring!))
    expect(await published(restarted)).toEqual(before)
    // A fresh one that was not restored does not agree (the check can fail).
    expect((await published(makeGauntletScoring(p))).weights).not.toEqual(before.weights)
    // A corrupt saved state is a typed error.
    const bad = await Effect.runPromise(Effect.either(restarted.restore("{\"window\":1}")))
    expect(bad._tag).toBe("Left")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("eligibility: every declared peer with a bucket, permit or not, admitted by hotkey; never a declared validator, leading or not", () => {
  const part = (uid: number, role: "peer" | "validator", validatorPermit: boolean, stake: number, bucket?: string): Participant =>
    ({ uid, hotkey: `hk${uid}`, stake, validatorPermit, location: bucket === undefined ? undefined : { bucket }, role })
  // 0 leads, 4 is a validator that does not (yet) lead, 5 one without a permit; 1 is a staked miner.
  const ps = [part(0, "validator", true, 5000, "v"), part(1, "peer", true, 1500, "m1"), part(2, "peer", false, 0, "m2"), part(3, "peer", false, 0), part(4, "validator", true, 1000, "v2"), part(5, "validator", false, 0, "v3")]
  const dir: Directory = { participants: new Map(ps.map((x) => [x.uid, x])), leader: ps[0] }
  expect(eligiblePeers(dir)).toEqual([1, 2])
  expect(eligiblePeers({ ...dir, leader: undefined })).toEqual([1, 2])
  expect(eligibleCandidates(dir, { kind: "allowList", hotkeys: ["hk2"] }).map((c) => c.uid)).toEqual([2])
})
