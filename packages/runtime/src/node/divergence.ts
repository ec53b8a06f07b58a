/**
 * Identity checked, not assumed: every node remembers the digest of its parameters after each
 * outer step and compares it with the digest in the leader's parameter slice of that window (its
 * `debug-{w}` object, which the leader publishes anyway). A node that aggregated a different set (a late object it saw and
 * the leader did not, a store that answered differently) would otherwise drift without a word.
 * On a mismatch it says so (a `Diverged` event and a warning) and re-syncs through catch-up: it
 * restarts from the leader's latest checkpoint (or the seeded init) and replays the leader's
 * aggregation records up to the window it checked, which gives the leader's model bit for bit.
 *
 * The check never waits: a window whose slice is not out yet stays pending for the next call.
 */
import { Effect, Either } from "effect"
import type { Chain } from "@covenant/chain"
import type { Transport } from "@covenant/transport"
import type { RuntimeFailure } from "../errors.ts"
import type { RoundState } from "../round/outer-round.ts"
import { paramsDigest } from "../round/params.ts"
import type { NodeConfig } from "./node.ts"
import { initialModel, replayWindows } from "./node.ts"
import { fetchLeaderSlice, readDirectory } from "./network.ts"

/** Windows whose digest is kept for checking (older pending ones are dropped unchecked). */
export const PENDING_WINDOWS = 4

export interface DivergenceGuard {
  readonly cfg: Pick<NodeConfig, "name" | "spec" | "address" | "events" | "shards">
  readonly uid: number
  readonly state: RoundState
  /** The run's start window. */
  readonly start: number
  /** This node's digest after each recent window's outer step, by window (checked ones are removed). */
  readonly digests: Map<number, string>
  /** Run after a re-sync replaced `state.params` (e.g. to load them into the trainer, through `tryEngine`). */
  readonly onResync?: () => Effect.Effect<void, RuntimeFailure>
}

/**
 * Checks the pending windows against the leader's digests, oldest first. Returns the window the
 * node's state now includes: `done` when all is well (or nothing could be checked yet), the
 * re-synced window after a mismatch (the caller's catch-up then replays from there).
 */
export const guardDivergence = (guard: DivergenceGuard, done: number): Effect.Effect<number, RuntimeFailure, Chain | Transport> =>
  Effect.gen(function* () {
    const { cfg, digests, state } = guard
    const pending = [...digests.keys()].sort((a, b) => a - b)
    for (const w of pending) if (w <= done - PENDING_WINDOWS) digests.delete(w)
    if (digests.size === 0) return done
    const dir = yield* readDirectory
    if (dir.leader === undefined || dir.leader.uid === guard.uid) {
      digests.clear() // the leader is the reference: nothing to compare with
      return done
    }
    for (const w of [...digests.keys()].sort((a, b) => a - b)) {
      const slice = yield* Effect.either(fetchLeaderSlice(dir, cfg.address, w))
      if (Either.isLeft(slice) || slice.right === undefined) continue
      const mine = digests.get(w)!
      digests.delete(w)
      if (slice.right.digest === mine) continue
      // Diverged: restart from the leader's checkpoint (or init) and replay its records up to w.
      yield* Effect.logWarning(`${cfg.name}: after window ${w} the model ${mine.slice(0, 12)} differs from the leader's ${slice.right.digest.slice(0, 12)}; re-syncing`)
      const fresh = yield* initialModel(cfg.spec, cfg.address, undefined, guard.start)
      state.params = fresh.params
      state.momentum = fresh.momentum
      let resyncedTo = fresh.window
      if (fresh.window < w) {
        yield* replayWindows(state, cfg.spec, cfg.address, guard.start, fresh.window + 1, w, cfg.shards)
        resyncedTo = w
      }
      if (guard.onResync !== undefined) yield* guard.onResync()
      digests.clear()
      const now = paramsDigest(state.params)
      cfg.events({
        _tag: "Diverged",
        name: cfg.name,
        uid: guard.uid,
        window: w,
        digest: mine,
        leaderDigest: slice.right.digest,
        resyncedTo,
        matches: resyncedTo === w ? now === slice.right.digest : null,
      })
      return resyncedTo
    }
    return done
  })
