import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Chain, identityFromSecret, layerLocal, layerLocalClient, LocalChain, readOwnerUrl } from "@covenant/chain"
import type { Identity } from "@covenant/chain"
import { debug } from "@covenant/dsl"
import { layerFileSystem } from "@covenant/transport"
import { Effect, Layer, Logger } from "effect"
import {
  awaitStart, eligibleCandidates, joinNetwork, leaderCandidates, leadsVacantRun, openRunData, publishPeerList, publishStartWindow, readDirectory, runAddress, runValidator, ScoringEqual,
} from "../src/index.ts"
import type { NodeConfig } from "../src/index.ts"

// A real local chain and a real filesystem store, as a live subnet looks once miners earn stake:
// the subnet owner holds the most stake and a permit but runs no node (no bucket), a miner has
// earned more stake than the validator (so it holds a permit too) and declares the peer role,
// and only the validator declares and runs the validator's code.

describe("leader on a chain where a permit is not a role", () => {
  test("the leader is the validator that publishes the start window, not the owner or a staked miner; waiting nodes say whom they wait for", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-leader-"))
    try {
      const spec = debug()
      const address = runAddress(spec)
      const [owner, miner, validator] = await Promise.all(["//leader-test-owner", "//leader-test-miner", "//leader-test-validator"].map((s) => Effect.runPromise(identityFromSecret(s))))
      const transport = layerFileSystem(join(dir, "store"))
      const lines: string[] = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void lines.push(Array.isArray(message) ? message.join(" ") : String(message))))

      const program = Effect.gen(function* () {
        const chainDir = join(dir, "chain")
        const ownerCtx = yield* Layer.build(Layer.merge(layerLocal({ dir: chainDir, identity: owner!, params: { blockIntervalMs: 100, blocksPerWindow: 5, permitStake: 1000 } }), transport))
        const url = yield* readOwnerUrl(chainDir)
        const client = (identity: Identity) => Layer.build(Layer.merge(layerLocalClient(url, identity), transport))
        const minerCtx = yield* client(miner!)
        const validatorCtx = yield* client(validator!)

        // The owner: the most stake, a permit, no node and so no bucket.
        yield* Effect.provide(Effect.flatMap(LocalChain, (c) => Effect.zipRight(c.register, c.addStake(5000))), ownerCtx)
        // The miner: a bucket, and more stake than the validator.
        const minerUid = yield* Effect.provide(Effect.tap(joinNetwork({ bucket: "covenant-miner" }, { _tag: "Filesystem", dir: "covenant-miner" }, "peer"), () => Effect.flatMap(LocalChain, (c) => c.addStake(3000))), minerCtx)
        const validatorUid = yield* Effect.provide(Effect.tap(joinNetwork({ bucket: "covenant-validator" }, { _tag: "Filesystem", dir: "covenant-validator" }, "validator"), () => Effect.flatMap(LocalChain, (c) => c.addStake(1000))), validatorCtx)
        const graph = yield* Effect.provide(Effect.flatMap(Chain, (c) => c.refreshMetagraph), ownerCtx)
        expect(graph.neurons.every((n) => n.validatorPermit)).toBe(true)

        // Nobody has published: nobody leads, and a waiting node says what it waits for, at once.
        // The staked miner declared the peer role: it is a candidate peer, never a leader candidate.
        const before = yield* Effect.provide(readDirectory, validatorCtx)
        expect(before.leader).toBeUndefined()
        expect(leadsVacantRun(before, validatorUid)).toBe(true)
        expect(leadsVacantRun(before, minerUid)).toBe(false)
        expect(eligibleCandidates(before, undefined).map((c) => c.uid)).toEqual([minerUid])
        const waited = yield* Effect.provide(Effect.timeoutOption(awaitStart(address, spec), "400 millis"), minerCtx).pipe(Effect.provide(capture))
        expect(waited._tag).toBe("None")
        const said = lines.find((l) => l.includes("start_window_v1.json")) ?? ""
        expect(said).not.toContain(`uid ${minerUid}`)
        expect(said).toContain(`uid ${validatorUid}`)
        expect(said).toContain("covenant-validator")

        // The validator claims the run; from then on it leads for everyone, whatever the stakes.
        const me = { identity: validator!, uid: validatorUid, own: { bucket: "covenant-validator" } }
        yield* Effect.provide(Effect.zipRight(publishPeerList(me, address, 7, [minerUid], []), publishStartWindow(me, address, 7)), validatorCtx)
        for (const ctx of [ownerCtx, minerCtx, validatorCtx]) {
          const after = yield* Effect.provide(readDirectory, ctx)
          expect(after.leader?.uid).toBe(validatorUid)
          expect(leadsVacantRun(after, validatorUid)).toBe(false)
        }
        expect(yield* Effect.provide(awaitStart(address, spec), minerCtx)).toBe(7)
      })
      await Effect.runPromise(Effect.scoped(program))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
  test("a node that runs the validator without a validator permit stops at start with NoValidatorPermit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-permit-"))
    try {
      const spec = debug()
      const identity = await Effect.runPromise(identityFromSecret("//leader-test-unstaked"))
      const layer = Layer.mergeAll(
        layerLocal({ dir: join(dir, "chain"), identity, params: { blockIntervalMs: 50, blocksPerWindow: 5, permitStake: 1000 }, serve: false }),
        layerFileSystem(join(dir, "store")),
        ScoringEqual,
      )
      const program = Effect.gen(function* () {
        const shards = yield* openRunData(spec, join(dir, "data"))
        const own = { bucket: "covenant-unstaked" }
        const cfg: NodeConfig = {
          name: "validator-unstaked", spec, address: runAddress(spec), identity, own, commitment: { _tag: "Filesystem", dir: own.bucket },
          stateDir: join(dir, "state"), shards, events: () => {},
        }
        const failed = yield* Effect.flip(runValidator(cfg))
        // It did commit its role: the directory shows a declared validator that is no leader candidate.
        const seen = [...(yield* readDirectory).participants.values()]
        return { failed, seen }
      })
      const { failed, seen } = await Effect.runPromise(Effect.scoped(Effect.provide(program, layer)))
      expect(failed._tag === "ChainFailure" && failed.cause._tag).toBe("NoValidatorPermit")
      expect(failed.message).toContain("no validator permit")
      expect(seen.map((p) => [p.role, p.validatorPermit])).toEqual([["validator", false]])
      expect(leaderCandidates(seen)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})
