/**
 * The swarm over the S3 layer against a real S3 server (s3rver on loopback): 3 peers + validator,
 * every node bitwise identical after every outer step, the loss falls, and a peer joining at
 * round 3 (checkpoint-less: replaying the aggregation records from S3) is identical at round 5.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { runSwarm } from "@covenant/runtime"
import { LocalS3 } from "@covenant/transport/testing"
import { logEvent, roundsOf, swarmTestSpec, validatorRounds } from "./swarm-support.ts"

const s3 = new LocalS3()
beforeAll(() => s3.start())
afterAll(() => s3.dispose())

test("swarm on a real S3 server: identical models every window, loss falls, a joiner catches up", async () => {
  const spec = await swarmTestSpec()
  const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-s3-"))
  try {
    const { startWindow: s, events } = await Effect.runPromise(runSwarm({
      spec,
      peers: 3,
      rounds: 6,
      workDir,
      transport: { kind: "s3", config: s3.config(), read: s3.readKeys() },
      churn: [{ round: 3, action: "start", peer: 3 }],
      onEvent: logEvent(Date.now()),
    }))
    const byWindow = validatorRounds(events)
    // Uids follow the order in which nodes registered; find the first three peers' by name.
    const uidOf = new Map(events.flatMap((e) => (e._tag === "Joined" ? [[e.name, e.uid] as const] : [])))
    const first = ["peer-0", "peer-1", "peer-2"].map((n) => uidOf.get(n)!).sort((a, b) => a - b)
    for (let w = s; w < s + 6; w++) {
      expect({ w, stepped: byWindow.get(w)?.stepped, gathered: byWindow.get(w)?.gathered.length }).toMatchObject({ w, stepped: true })
      // Only listed peers: the first three, and the joiner once the refreshed peer list is in force.
      for (const u of byWindow.get(w)!.gathered) expect([...first, uidOf.get("peer-3")]).toContain(u)
    }
    // Each of the first three is aggregated in at least 5 of the 6 windows: a peer whose round
    // overruns the 4 s window on a loaded machine misses that window's upload interval, and the
    // round goes on without it (every node alike: the digests below prove that). One such miss
    // per peer is the stated margin.
    const windows = Array.from({ length: 6 }, (_, i) => s + i)
    for (const u of first) expect(windows.filter((w) => byWindow.get(w)!.gathered.includes(u)).length).toBeGreaterThanOrEqual(5)
    const peerRounds = roundsOf(events).filter((e) => e.role === "peer")
    expect(peerRounds.length).toBeGreaterThanOrEqual(3 * 6 + 1)
    for (const e of peerRounds) expect({ name: e.name, window: e.window, digest: e.digest }).toEqual({ name: e.name, window: e.window, digest: byWindow.get(e.window)!.digest })
    expect(peerRounds.find((e) => e.name === "peer-3" && e.window === s + 5)?.digest).toBe(byWindow.get(s + 5)!.digest)
    expect(byWindow.get(s + 5)!.loss!).toBeLessThan(byWindow.get(s)!.loss! - 0.05)
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}, 120_000)
