/**
 * A leader that exists (#14), on the simulated clock: two validators (validator-0 stakes more and
 * leads), three peers; validator-0 is killed at round 2. Its start window stays in its bucket,
 * but its heartbeat stops: within LEADER_STALE_WINDOWS + 1 windows validator-1 takes over (same
 * start window, the peer lists in force republished), publishes records and lists from then on,
 * and says so; every peer keeps stepping with validator-1's model, bit for bit; a peer that joins
 * after the takeover is listed and catches up by replaying records of both leaders (and the
 * windows in between from the peers' buckets). Neither validator is ever listed as a peer nor
 * reported missing: each declared its role in its commitment.
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { derive } from "@covenant/dsl"
import { LEADER_STALE_WINDOWS, runSwarm } from "@covenant/runtime"
import type { NodeEvent } from "@covenant/runtime"
import { roundsOf, swarmTestSpec } from "./swarm-support.ts"

const rounds = 11
const killedAt = 2
const joinsAt = 8

test("simulated swarm: the leading validator dies, the second takes over within K + 1 windows, peers stay identical, a joiner catches up", async () => {
  const spec = await Effect.runPromise(derive(await swarmTestSpec(), { participation: { peerListRefreshWindows: 1 } }))
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-leader-"))
  try {
    const { startWindow: s, events } = await Effect.runPromise(runSwarm({
      spec,
      peers: 3,
      validators: 2,
      rounds,
      workDir,
      scoring: "equal",
      evaluate: false,
      clock: "simulated",
      churn: [
        { round: killedAt, action: "kill", validator: 0 },
        { round: joinsAt, action: "start", peer: 3 },
      ],
    }))
    const rs = roundsOf(events)
    const v1 = new Map(rs.filter((e) => e.name === "validator-1").map((e) => [e.window, e]))
    const uidOf = (name: string) => events.find((e): e is Extract<NodeEvent, { _tag: "Joined" }> => e._tag === "Joined" && e.name === name)?.uid

    // Both validators declared the validator role: neither is ever a peer, leading or not (validator-1
    // before the takeover, validator-0 after its death): on every node, never in the list in force
    // (`expected`) nor reported missing.
    const validatorUids = ["validator-0", "validator-1"].map((name) => uidOf(name)!)
    for (const e of rs) {
      expect({ name: e.name, window: e.window, listed: e.expected.filter((u) => validatorUids.includes(u)) }).toEqual({ name: e.name, window: e.window, listed: [] })
      expect({ name: e.name, window: e.window, missing: (e.missing ?? []).filter((m) => validatorUids.includes(m.uid)) }).toEqual({ name: e.name, window: e.window, missing: [] })
    }

    // validator-0 stopped at round 2; validator-1 ran every window to the end.
    expect(Math.max(...rs.filter((e) => e.name === "validator-0").map((e) => e.window))).toBeLessThan(s + killedAt + 1)
    for (let w = s; w < s + rounds; w++) expect(v1.get(w)?.stepped).toBe(true)

    // It took over within K + 1 windows of the kill, and said who went stale since when.
    const took = events.filter((e): e is Extract<NodeEvent, { _tag: "Notice" }> => e._tag === "Notice" && e.kind === "took-lead")
    expect(took.map((e) => e.name)).toEqual(["validator-1"])
    const takeover = took[0]!.window
    expect(takeover).toBeLessThanOrEqual(s + killedAt + LEADER_STALE_WINDOWS + 1)
    expect(took[0]!.message).toContain(`uid ${uidOf("validator-0")!} (`)
    expect(took[0]!.message).toContain("stale since window")

    // Peers stepped every window after the takeover too, on validator-1's model, bit for bit.
    const peerRounds = rs.filter((e) => e.role === "peer")
    for (const e of peerRounds) expect({ name: e.name, window: e.window, digest: e.digest }).toEqual({ name: e.name, window: e.window, digest: v1.get(e.window)!.digest })
    for (const name of ["peer-0", "peer-1", "peer-2"]) {
      const after = peerRounds.filter((e) => e.name === name && e.window > takeover)
      expect(after.length).toBeGreaterThanOrEqual(s + rounds - 1 - takeover - 1)
    }
    for (let w = takeover + 1; w < s + rounds; w++) expect(v1.get(w)!.gathered.length).toBeGreaterThanOrEqual(2)

    // The joiner (after the takeover) is listed by the new leader and catches up to its model.
    const joiner = uidOf("peer-3")!
    expect(v1.get(s + rounds - 1)!.expected).toContain(joiner)
    // No leader had a checkpoint for it (validator-0 died before its first, validator-1 took over after
    // its own would-be one): it replayed from the start, validator-0's records, then the windows with
    // none (from the peers' buckets), then validator-1's, and matched the new leader's debug slice.
    expect(events.some((e) => e._tag === "CaughtUp" && e.name === "peer-3" && e.from === s && e.debugDistance === 0)).toBe(true)
    const joinerLast = peerRounds.filter((e) => e.name === "peer-3").at(-1)
    expect(joinerLast?.digest).toBe(v1.get(joinerLast!.window)!.digest)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}, 240_000)
