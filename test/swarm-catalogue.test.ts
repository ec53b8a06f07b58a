/**
 * The rest of the catalogue in one swarm: 2 honest peers with a scaled, a noise, a wrong-shape,
 * a wrong-codec, a stale, a free-rider, an other-data and a slow peer. Whatever they upload, no
 * node crashes, every node that finishes a window holds the validator's parameters bit for bit,
 * the wrong-shape update is never aggregated, and the slow peer's update misses windows.
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { catalogue, runSwarm, swarmSummary } from "@covenant/runtime"
import { logEvent, roundsOf, swarmTestSpec, validatorRounds } from "./swarm-support.ts"

const KINDS = ["scaled", "noise", "wrong-shape", "wrong-codec", "stale", "free-rider", "other-data", "slow"] as const

test("swarm with the rest of the catalogue: no crash, identical models, wrong shapes never aggregated", async () => {
  const spec = await swarmTestSpec()
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-cat-"))
  const rounds = 6
  try {
    const behaviours = Object.fromEntries(KINDS.map((k, i) => [i + 2, catalogue[k]!]))
    const { startWindow: s, events } = await Effect.runPromise(runSwarm({
      spec, peers: 2 + KINDS.length, rounds, workDir, behaviours, onEvent: logEvent(Date.now()),
      // Equal scoring keeps every peer listed: this test is about the hook; the Gauntlet drops the slow
      // peer from the list once it misses, and the slow-peer assertions count listed windows.
      scoring: "equal",
    }))
    const byWindow = validatorRounds(events)
    for (let w = s; w < s + rounds; w++) expect(byWindow.has(w)).toBe(true)
    const peerRounds = roundsOf(events).filter((e) => e.role === "peer")
    for (const e of peerRounds) expect({ name: e.name, window: e.window, digest: e.digest }).toEqual({ name: e.name, window: e.window, digest: byWindow.get(e.window)!.digest })
    const uidOf = new Map(events.flatMap((e) => (e._tag === "Joined" ? [[e.name, e.uid] as const] : [])))
    const wrongShape = uidOf.get(`peer-${2 + KINDS.indexOf("wrong-shape")}`)!
    for (const v of byWindow.values()) expect(v.gathered).not.toContain(wrongShape)
    // No node crashed (runSwarm fails if one does) and every peer finished windows (one that fell
    // behind on a loaded machine replays rather than reports some); the slow one's update missed
    // at least one window it was listed for (its training overran it) and made it into another.
    for (const name of uidOf.keys()) if (name.startsWith("peer-")) expect(peerRounds.some((e) => e.name === name)).toBe(true)
    const slow = uidOf.get(`peer-${2 + KINDS.indexOf("slow")}`)!
    const listed = [...byWindow.values()].filter((v) => v.expected.includes(slow))
    expect(listed.some((v) => !v.gathered.includes(slow))).toBe(true)
    expect(listed.some((v) => v.gathered.includes(slow))).toBe(true)
    // The summary names every behaviour.
    const labels = Object.fromEntries(KINDS.map((k, i) => [`peer-${i + 2}`, k]))
    expect(swarmSummary(events, labels).peers.map((p) => p.behaviour).sort()).toEqual(["honest", "honest", ...KINDS].sort())
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}, 240_000)
