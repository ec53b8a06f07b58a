/**
 * The simulated swarm (`clock: "simulated"`): two runs with the same seed, a mix of catalogue
 * behaviours and churn give the same run, event for event (every node's window, gathered,
 * rejected and missing peers, digest and loss; the validator's judgements and weights; the
 * summary), and simulated time is exact: the run's windows span exactly windows x window length
 * of chain time. Nothing here reads the wall clock.
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { catalogue, runSwarm, swarmSummary } from "@covenant/runtime"
import type { ChurnAction, NodeEvent, SwarmResult } from "@covenant/runtime"
import { swarmTestSpec, validatorRounds } from "./swarm-support.ts"

const rounds = 5
const peers = 6
const behaviours = { 3: catalogue["sign-flip"]!, 4: catalogue["copycat"]!, 5: catalogue["slow"]! }
const labels = { "peer-3": "sign-flip", "peer-4": "copycat", "peer-5": "slow" }
// Peer 1 is down for rounds 1..2 and comes back (it replays what it missed).
const churn: ChurnAction[] = [{ round: 1, action: "kill", peer: 1 }, { round: 3, action: "start", peer: 1 }]

/** Everything a run decided, without wall-clock measurements (roundMs, phaseMs, notices' compute times). */
const decisions = (events: ReadonlyArray<NodeEvent>) =>
  events
    .flatMap((e): unknown[] => {
      switch (e._tag) {
        case "Round": {
          const { roundMs: _r, phaseMs: _p, ...rest } = e
          return [rest]
        }
        case "Notice":
          return [{ _tag: e._tag, name: e.name, kind: e.kind, window: e.window }]
        case "Phase":
          return []
        default:
          return [e]
      }
    })
    .map((e) => JSON.stringify(e))
    .sort()

const simulatedRun = async (): Promise<SwarmResult> => {
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-sim-"))
  try {
    return await Effect.runPromise(runSwarm({ spec: await swarmTestSpec(), peers, rounds, workDir, behaviours, churn, clock: "simulated" }))
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}

test("simulated swarm: the same seed gives the same run, event for event, in exact simulated time", async () => {
  const spec = await swarmTestSpec()
  const a = await simulatedRun()
  const b = await simulatedRun()
  const s = a.startWindow

  // Identical decisions, summary and simulated time.
  expect(b.startWindow).toBe(s)
  expect(decisions(b.events)).toEqual(decisions(a.events))
  expect(swarmSummary(b.events, labels)).toEqual(swarmSummary(a.events, labels))
  expect({ elapsedMs: b.simulated!.elapsedMs, advances: b.simulated!.advances }).toEqual({ elapsedMs: a.simulated!.elapsedMs, advances: a.simulated!.advances })

  // Chain time is exact: the run's windows span windows x window length, and the swarm took at
  // least that much simulated time (and not more than a few windows on top: start and last gather).
  const windowMs = spec.participation.blocksPerWindow * spec.participation.blockTimeMs
  expect(a.windowsSpanMs.to - a.windowsSpanMs.from).toBe(rounds * windowMs)
  expect(a.simulated!.elapsedMs).toBeGreaterThanOrEqual(rounds * windowMs)
  expect(a.simulated!.elapsedMs).toBeLessThan((rounds + 3) * windowMs)

  // The run is not trivial: every window stepped, with updates aggregated, and every peer round
  // (the adversaries step honestly) holds the validator's model of its window.
  const byWindow = validatorRounds(a.events)
  for (let w = s; w < s + rounds; w++) expect(byWindow.get(w)?.stepped).toBe(true)
  // Peers register before the validator's first list: it names every one of them.
  const peerUids = [...new Set(a.events.flatMap((e) => (e._tag === "Joined" && e.role === "peer" ? [e.uid] : [])))].sort((x, y) => x - y)
  expect(peerUids.length).toBe(peers)
  expect(byWindow.get(s)!.expected).toEqual(peerUids)
  expect([...byWindow.values()].some((v) => v.gathered.length >= 3)).toBe(true)
  const peerRounds = a.events.filter((e): e is Extract<NodeEvent, { _tag: "Round" }> => e._tag === "Round" && e.role === "peer")
  expect(peerRounds.length).toBeGreaterThan(0)
  for (const e of peerRounds) expect({ name: e.name, window: e.window, digest: e.digest }).toEqual({ name: e.name, window: e.window, digest: byWindow.get(e.window)!.digest })
  // The churned peer came back and caught up.
  expect(a.events.some((e) => e._tag === "CaughtUp" && e.name === "peer-1")).toBe(true)
  // Compute takes no simulated time: honest peers never land late; only the slow one does.
  const late = a.events.filter((e) => e._tag === "Notice" && e.kind === "late").map((e) => (e as { name: string }).name)
  expect(new Set(late)).toEqual(new Set(["peer-5"]))
}, 240_000)
