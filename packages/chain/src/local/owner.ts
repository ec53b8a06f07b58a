import { cryptoWaitReady } from "@polkadot/util-crypto";
import { Duration, Effect, Either, Schedule } from "effect";
import type { Scope } from "effect";
import * as fs from "node:fs";
import type { LocalBackend, LocalView } from "./backend.ts";
import { defaultLocalParams } from "./state.ts";
import type { LocalParams } from "./state.ts";
import { LocalStoreError, openStore, storeFiles, writeFileAtomic } from "./store.ts";

export interface LocalOwnerOptions {
  /** The chain directory: genesis, log, snapshot, owner URL. */
  readonly dir: string;
  /** Rules for a new chain; an existing directory keeps the rules it was created with. */
  readonly params?: Partial<LocalParams>;
  readonly snapshotEveryBlocks?: number;
}

/** Whether a process with this pid exists (signal 0 probes without signalling). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** One owner per directory: an exclusive lock file holding the pid; a dead owner's lock is taken over. */
const acquireLock = (dir: string): Effect.Effect<void, LocalStoreError, Scope.Scope> => {
  const path = storeFiles(dir).lock;
  const take = Effect.try({
    try: () => {
      for (;;) {
        try {
          fs.writeFileSync(path, String(process.pid), { flag: "wx" });
          return;
        } catch (cause) {
          const pid = Number(fs.readFileSync(path, "utf8"));
          // A live pid, this process's included, owns the directory; only a dead owner's lock is taken over.
          if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
            throw new Error(`owned by live process ${pid}; connect to the URL in owner.json with layerLocalClient`, { cause });
          }
          fs.rmSync(path, { force: true });
        }
      }
    },
    catch: (cause) => new LocalStoreError({ path, reason: cause instanceof Error ? cause.message : String(cause) }),
  });
  return Effect.acquireRelease(take, () => Effect.sync(() => fs.rmSync(path, { force: true })));
};

/**
 * Opens a chain directory as its owner: replays its state, produces blocks every
 * `blockIntervalMs`, and applies signed calls durably (fsync'ed before they are acknowledged).
 */
export const openLocalOwner = (options: LocalOwnerOptions): Effect.Effect<LocalBackend, LocalStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    yield* Effect.promise(() => cryptoWaitReady());
    yield* Effect.try({
      try: () => fs.mkdirSync(options.dir, { recursive: true }),
      catch: (cause) => new LocalStoreError({ path: options.dir, reason: String(cause) }),
    });
    yield* acquireLock(options.dir);
    const store = yield* Effect.acquireRelease(openStore(options.dir, { ...defaultLocalParams, ...options.params }), (s) =>
      Effect.sync(() => {
        s.snapshot();
        s.close();
      }),
    );
    const state = store.state;
    const params = state.params;
    const snapshotEvery = options.snapshotEveryBlocks ?? 1000;

    const waiters = new Set<() => void>();
    const produceBlock = Effect.sync(() => {
      const entry = { _tag: "Block" as const, number: state.block + 1, timestampMs: Math.max(Date.now(), state.timestampMs) };
      if (Either.isRight(state.apply(entry))) {
        // Block lines are not fsync'ed alone: a lost block is re-produced; the next call's fsync covers them.
        store.append(entry, false);
        if (entry.number % snapshotEvery === 0) store.snapshot();
      }
      for (const wake of waiters) wake();
      waiters.clear();
    });
    yield* Effect.forkScoped(Effect.repeat(produceBlock, Schedule.spaced(Duration.millis(params.blockIntervalMs))));

    const waitForBlock = (waitMs: number) =>
      Effect.async<void>((resume) => {
        const wake = () => resume(Effect.void);
        waiters.add(wake);
        const timer = setTimeout(() => {
          waiters.delete(wake);
          resume(Effect.void);
        }, waitMs);
        return Effect.sync(() => {
          clearTimeout(timer);
          waiters.delete(wake);
        });
      });

    const backend: LocalBackend = {
      info: { genesisHash: state.genesisHash, params },
      head: Effect.sync(() => ({ number: state.block, timestampMs: state.timestampMs })),
      blocksAfter: (after, waitMs) =>
        Effect.suspend(() => (state.block > after ? Effect.void : waitForBlock(waitMs))).pipe(Effect.map(() => state.blocksSince(after))),
      timestamp: (block) => Effect.suspend(() => state.timestampOf(block)),
      nonce: (account) => Effect.sync(() => state.nonceOf(account)),
      uidOf: (hotkey) => Effect.sync(() => state.uidOfHotkey(hotkey)),
      submit: (signed) =>
        Effect.suspend(() => {
          const entry = { _tag: "Call" as const, block: state.block, signed };
          const applied = state.apply(entry);
          if (Either.isLeft(applied)) return Effect.fail(applied.left);
          store.append(entry, true);
          return Effect.void;
        }),
      view: Effect.sync(
        (): LocalView => ({ metagraph: state.metagraph(), commitments: [...state.commitments()], weights: [...state.weights()] }),
      ),
    };
    return backend;
  });

/** Records the URL other processes connect to; removed when the owner closes. */
export const publishOwnerUrl = (dir: string, url: string): Effect.Effect<void, LocalStoreError, Scope.Scope> => {
  const path = storeFiles(dir).owner;
  return Effect.acquireRelease(
    Effect.try({
      try: () => writeFileAtomic(path, JSON.stringify({ url, pid: process.pid })),
      catch: (cause) => new LocalStoreError({ path, reason: String(cause) }),
    }),
    () => Effect.sync(() => fs.rmSync(path, { force: true })),
  );
};

