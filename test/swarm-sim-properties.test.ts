/**
 * Property tests of the protocol on the simulated swarm: for random mixes of catalogue behaviours
 * (a minority of the peers) and churn (an honest peer down for a while), nothing crashes, every
 * peer that steps (honest or not: adversaries take the same outer step) holds the validator's
 * model after each window, no node diverges, and the validator's model loss falls over the run.
 *
 * Runs are few (numRuns 3, 5 peers, 4 windows): each is a whole swarm, ~10 s of compute on this
 * 2-core machine, so three keep the file near 40 s. Each run's seed is fast-check's, printed on a
 * failure with the mix; FC_SEED=<seed> replays it, exactly (the simulator is deterministic).
 */
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, FastCheck as fc } from "effect"
import { catalogue, runSwarm } from "@covenant/runtime"
import type { ChurnAction, PeerBehaviour } from "@covenant/runtime"
import { roundsOf, swarmTestSpec, validatorRounds } from "./swarm-support.ts"

const peers = 5
const rounds = 4
const kinds = Object.keys(catalogue)

const scenario = fc.record({
  // At most 2 of 5 adversarial: an honest majority.
  adversaries: fc.uniqueArray(fc.constantFrom(...kinds), { minLength: 0, maxLength: 2 }),
  // Honest peer 0 or 1 goes down at some round and maybe comes back later.
  churn: fc.option(fc.record({ peer: fc.integer({ min: 0, max: 1 }), down: fc.integer({ min: 1, max: 2 }), back: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }) }), { nil: undefined }),
})

test("simulated swarm, random behaviours and churn: no crash, every stepping peer holds the validator's model, loss falls", async () => {
  const spec = await swarmTestSpec()
  await fc.assert(
    fc.asyncProperty(scenario, async ({ adversaries, churn }) => {
      const behaviours: Record<number, PeerBehaviour> = {}
      adversaries.forEach((k, i) => {
        behaviours[peers - 1 - i] = catalogue[k]!
      })
      const actions: ChurnAction[] = churn === undefined
        ? []
        : [{ round: churn.down, action: "kill", peer: churn.peer }, ...(churn.back === undefined ? [] : [{ round: churn.down + churn.back, action: "start" as const, peer: churn.peer }])]
      const workDir = mkdtempSync(join(tmpdir(), "covenant-swarm-prop-"))
      try {
        // Nothing crashes: a node's failure fails the swarm.
        const { startWindow: s, events } = await Effect.runPromise(runSwarm({ spec, peers, rounds, workDir, behaviours, churn: actions, clock: "simulated" }))
        const byWindow = validatorRounds(events)
        for (let w = s; w < s + rounds; w++) expect(byWindow.get(w)?.stepped).toBe(true)
        // Bitwise identical: every peer round ends on the validator's digest; nobody diverged.
        const peerRounds = roundsOf(events).filter((e) => e.role === "peer")
        expect(peerRounds.length).toBeGreaterThanOrEqual((peers - 1) * (rounds - 2))
        for (const e of peerRounds) expect({ name: e.name, window: e.window, digest: e.digest }).toEqual({ name: e.name, window: e.window, digest: byWindow.get(e.window)!.digest })
        expect(events.filter((e) => e._tag === "Diverged")).toEqual([])
        // The model learns: the validator's loss after the last window is below the first's.
        const first = byWindow.get(s)!.loss!
        const last = byWindow.get(s + rounds - 1)!.loss!
        expect(last).toBeLessThan(first)
      } finally {
        rmSync(workDir, { recursive: true, force: true })
      }
    }),
    { numRuns: 3, endOnFailure: true, ...(process.env["FC_SEED"] === undefined ? {} : { seed: Number(process.env["FC_SEED"]) }) },
  )
}, 180_000)
