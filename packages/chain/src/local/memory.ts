/**
 * The local chain's state machine in memory, on Effect's Clock: blocks every `blockIntervalMs`
 * of Clock time (stamped with the Clock), nothing on disk, a fixed genesis hash. Under a
 * simulated clock a run's block times, hence its windows and upload intervals, are reproducible.
 * Same `LocalBackend` as the owner's: `makeLocalChain(backend, identity)` gives each node its Chain.
 */
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { Clock, Deferred, Duration, Effect, Either, Schedule } from "effect";
import type { Scope } from "effect";
import type { LocalBackend, LocalView } from "./backend.ts";
import { defaultLocalParams, LocalState } from "./state.ts";
import type { LocalParams } from "./state.ts";

export interface MemoryChainOptions {
  readonly params?: Partial<LocalParams>;
  /** Genesis hash (signed into every call); fixed by default so runs are reproducible. */
  readonly genesisHash?: string;
}

export const openMemoryBackend = (options: MemoryChainOptions = {}): Effect.Effect<LocalBackend, never, Scope.Scope> =>
  Effect.gen(function* () {
    yield* Effect.promise(() => cryptoWaitReady());
    const params: LocalParams = { ...defaultLocalParams, ...options.params };
    const state = new LocalState(options.genesisHash ?? `0x${"00".repeat(32)}`, params, yield* Clock.currentTimeMillis);
    let next = yield* Deferred.make<void>();

    const produceBlock = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      state.apply({ _tag: "Block", number: state.block + 1, timestampMs: Math.max(now, state.timestampMs) });
      const woken = next;
      next = yield* Deferred.make<void>();
      yield* Deferred.succeed(woken, undefined);
    });
    yield* Effect.forkScoped(Effect.repeat(Effect.zipRight(Effect.sleep(Duration.millis(params.blockIntervalMs)), produceBlock), Schedule.forever));

    return {
      info: { genesisHash: state.genesisHash, params },
      head: Effect.sync(() => ({ number: state.block, timestampMs: state.timestampMs })),
      blocksAfter: (after, waitMs) =>
        Effect.suspend(() => (state.block > after ? Effect.void : Effect.raceFirst(Deferred.await(next), Effect.sleep(Duration.millis(waitMs))))).pipe(
          Effect.map(() => state.blocksSince(after)),
        ),
      timestamp: (block) => Effect.suspend(() => state.timestampOf(block)),
      nonce: (account) => Effect.sync(() => state.nonceOf(account)),
      uidOf: (hotkey) => Effect.sync(() => state.uidOfHotkey(hotkey)),
      submit: (signed) =>
        Effect.suspend(() => {
          const applied = state.apply({ _tag: "Call", block: state.block, signed });
          return Either.isLeft(applied) ? Effect.fail(applied.left) : Effect.void;
        }),
      view: Effect.sync((): LocalView => ({ metagraph: state.metagraph(), commitments: [...state.commitments()], weights: [...state.weights()] })),
    } satisfies LocalBackend;
  });
