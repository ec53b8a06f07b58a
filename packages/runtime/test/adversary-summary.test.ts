/** `--adversary` flags and the swarm summary, from synthetic node events. */
import { describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect, Either, Schema } from "effect"
import { Rejection, assignAdversaries, parseAdversaryFlag, runLogOf, SwarmSummary, swarmSummary, writeSwarmSummary } from "../src/index.ts"
import type { NodeEvent } from "../src/index.ts"

type Round = Extract<NodeEvent, { _tag: "Round" }>
const round = (name: string, role: "peer" | "validator", uid: number, window: number, over: Partial<Round> = {}): NodeEvent => ({
  _tag: "Round", name, role, uid, window, loss: 2, bytesUp: 0, bytesDown: 0, expected: [1, 2, 3, 4], gathered: [1, 2], rejected: [], stepped: true,
  digest: "d", roundMs: 10, phaseMs: { compute: 1 }, ...over,
})

const joined = (name: string, role: "peer" | "validator", uid: number): NodeEvent => ({ _tag: "Joined", name, role, uid, resumedAt: null })

const events: NodeEvent[] = [
  joined("validator-0", "validator", 0),
  joined("peer-0", "peer", 2),
  joined("peer-1", "peer", 1),
  joined("peer-2", "peer", 3),
  joined("peer-3", "peer", 4),
  round("peer-0", "peer", 2, 5),
  round("validator-0", "validator", 0, 5, { loss: Number.NaN }),
  { _tag: "Weights", name: "validator-0", uid: 0, window: 6, weights: [{ uid: 1, weight: 0.5 }, { uid: 2, weight: 0.5 }, { uid: 4, weight: 0 }] },
  // The validator's typed rejections come first; listed peers left out without one are "not aggregated".
  round("validator-0", "validator", 0, 6, { gathered: [2, 1], rejected: [{ uid: 4, reason: Rejection.WrongChunk({ tensor: "lm_head.weight", chunk: 32, expected: 64 }) }] }),
  round("validator-0", "validator", 0, 7),
  { _tag: "Judged", name: "validator-0", window: 7, scores: [], evaluated: [], gradientScores: [], copies: [3], outliers: [4], invalid: [], dataChecks: [] },
]

describe("swarm summary", () => {
  test("peers with behaviours, per window loss, aggregated, rejected (typed first), flagged by judging and weights in force", () => {
    const s = swarmSummary(events, { "peer-3": "nan", "peer-2": "examples/behaviours/sign-flip.ts" })
    expect(s.peers).toEqual([
      { uid: 1, name: "peer-1", behaviour: "honest" },
      { uid: 2, name: "peer-0", behaviour: "honest" },
      { uid: 3, name: "peer-2", behaviour: "examples/behaviours/sign-flip.ts" },
      { uid: 4, name: "peer-3", behaviour: "nan" },
    ])
    expect(s.windows).toEqual([
      { window: 5, evalLoss: null, aggregated: [1, 2], rejected: [{ uid: 3, reason: "not aggregated" }, { uid: 4, reason: "not aggregated" }], flagged: [], weights: {} },
      { window: 6, evalLoss: 2, aggregated: [1, 2], rejected: [{ uid: 3, reason: "not aggregated" }, { uid: 4, reason: "WrongChunk(lm_head.weight: 32 != 64)" }], flagged: [], weights: { "1": 0.5, "2": 0.5, "4": 0 } },
      { window: 7, evalLoss: 2, aggregated: [1, 2], rejected: [{ uid: 3, reason: "not aggregated" }, { uid: 4, reason: "not aggregated" }], flagged: [{ uid: 3, reason: "copy" }, { uid: 4, reason: "norm outlier" }], weights: { "1": 0.5, "2": 0.5, "4": 0 } },
    ])
  })

  test("written as JSON that decodes with its Schema", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-summary-"))
    try {
      const path = join(dir, "s.json")
      await Effect.runPromise(writeSwarmSummary(path, swarmSummary(events)))
      const back = Schema.decodeUnknownSync(SwarmSummary)(JSON.parse(readFileSync(path, "utf-8")))
      expect(back.windows.map((w) => w.window)).toEqual([5, 6, 7])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("the report's log carries each peer's weight and behaviour", () => {
    const log = runLogOf("t", events, {}, { "peer-3": "nan" })
    expect(log.behaviours).toEqual({ "peer-0": "honest", "peer-1": "honest", "peer-2": "honest", "peer-3": "nan" })
    expect(log.windows.map((w) => w.weights)).toEqual([undefined, { "peer-1": 0.5, "peer-0": 0.5, "peer-3": 0 }, undefined])
  })
})

describe("--adversary values", () => {
  const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(e))

  test("repeatable, <name|path>=<count>, assigned to the last peers in order", async () => {
    const values = ["copycat=2", resolve(import.meta.dir, "../../../examples/behaviours/sign-flip.ts")]
    const flags = await Effect.runPromise(Effect.forEach(values, parseAdversaryFlag))
    expect(flags.map((f) => f.count)).toEqual([2, 1])
    const a = await Effect.runPromise(assignAdversaries(flags, 6))
    expect(Object.keys(a.behaviours).map(Number).sort()).toEqual([3, 4, 5])
    expect(a.behaviours[5]!.name).toBe("copycat")
    expect(a.behaviours[4]!.name).toBe("copycat")
    expect(a.behaviours[3]!.name).toBe("example-sign-flip")
    expect(a.labels["peer-5"]).toBe("copycat")
  })

  test("bad counts, unknown names and too many adversaries are typed errors", async () => {
    for (const v of ["copycat=0", "copycat=x", "=2"]) {
      const r = await run(parseAdversaryFlag(v))
      expect(Either.isLeft(r) && r.left.phase === "flags").toBe(true)
    }
    const unknown = await run(assignAdversaries([{ behaviour: "no-such", count: 1 }], 4))
    expect(Either.isLeft(unknown) && unknown.left.phase === "behaviour").toBe(true)
    const many = await run(assignAdversaries([{ behaviour: "nan", count: 5 }], 4))
    expect(Either.isLeft(many) && many.left.reason.includes("5 adversaries for 4 peers")).toBe(true)
  })
})
