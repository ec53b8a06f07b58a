import { describe, expect, test } from "bun:test";
import { Effect, Either, FastCheck as fc } from "effect";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityFromSecret, LocalParams, replayStore } from "../src/index.ts";
import { signCall } from "../src/local/calls.ts";
import type { LocalCall, SignedCall } from "../src/local/calls.ts";
import type { LogEntry } from "../src/local/state.ts";
import { openStore } from "../src/local/store.ts";

const keys = await Effect.runPromise(Effect.all(["//Alice", "//Bob", "//Charlie", "//Dave"].map((uri) => identityFromSecret(uri))));
const params: LocalParams = {
  blockIntervalMs: 1000,
  blocksPerWindow: 4,
  maxUids: 3,
  weightsRateLimit: 6,
  permitStake: 5,
  weightsVersionKey: 1,
  blockHistory: 8,
};

type Op =
  | { kind: "block" }
  | { kind: "call"; who: number; call: LocalCall }
  | { kind: "forged"; who: number; as: number }
  | { kind: "unsigned"; who: number }
  | { kind: "replay"; index: number };

const callArb: fc.Arbitrary<LocalCall> = fc.oneof(
  fc.constantFrom(0, 1, 2, 3).map((c): LocalCall => ({ _tag: "Register", coldkey: keys[c]!.hotkey.address })),
  fc.integer({ min: 2, max: 5 }).map((amount): LocalCall => ({ _tag: "AddStake", amount })),
  fc.string({ maxLength: 20 }).map((data): LocalCall => ({ _tag: "SetCommitment", data })),
  fc
    .uniqueArray(fc.integer({ min: 0, max: 2 }), { maxLength: 3 })
    .chain((uids) =>
      fc.tuple(fc.array(fc.integer({ min: 0, max: 65535 }), { minLength: uids.length, maxLength: uids.length }), fc.integer({ min: 0, max: 2 })).map(
        ([values, versionKey]): LocalCall => ({ _tag: "SetWeights", uids, values, versionKey }),
      ),
    ),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Op>({ kind: "block" }) },
  { weight: 8, arbitrary: fc.record({ who: fc.integer({ min: 0, max: 2 }), call: callArb }).map((r): Op => ({ kind: "call", ...r })) },
  { weight: 1, arbitrary: fc.record({ who: fc.integer({ min: 0, max: 3 }), as: fc.integer({ min: 0, max: 3 }) }).filter((r) => r.who !== r.as).map((r): Op => ({ kind: "forged", ...r })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((who): Op => ({ kind: "unsigned", who })) },
  { weight: 1, arbitrary: fc.nat().map((index): Op => ({ kind: "replay", index })) },
);

describe("local chain state machine (property)", () => {
  test("any interleaving replays from the persisted log to the same state; bad signatures, replays and rate limits are refused", async () => {
    // Counted across runs, so the test also shows the generator reaches the interesting paths.
    const seen = { weightsAccepted: 0, weightsRateLimited: 0, snapshots: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 20, maxLength: 60, size: "max" }), fc.integer({ min: 0, max: 40 }), async (ops, snapshotAt) => {
        const dir = mkdtempSync(join(tmpdir(), "covenant-chain-prop-"));
        const store = await Effect.runPromise(openStore(dir, params));
        const state = store.state;
        const accepted: SignedCall[] = [];
        const lastWeights = new Map<string, number>();
        let timestamp = state.timestampMs;
        ops.forEach((op, i) => {
          if (i === snapshotAt) {
            store.snapshot();
            seen.snapshots++;
          }
          if (op.kind === "block") {
            timestamp += 12;
            const entry: LogEntry = { _tag: "Block", number: state.block + 1, timestampMs: timestamp };
            expect(Either.isRight(state.apply(entry))).toBe(true);
            store.append(entry, false);
            return;
          }
          if (op.kind === "replay") {
            const again = accepted[op.index % Math.max(1, accepted.length)];
            if (again === undefined) return;
            const result = state.apply({ _tag: "Call", block: state.block, signed: again });
            expect(Either.isLeft(result) && result.left._tag === "CallRejected" && result.left.reason).toBe("StaleNonce");
            return;
          }
          if (op.kind === "forged" || op.kind === "unsigned") {
            const signer = keys[op.who]!.hotkey;
            const call: LocalCall = { _tag: "SetCommitment", data: "forged" };
            const nonce = state.nonceOf(signer.address);
            const signed =
              op.kind === "forged"
                ? { ...signCall(keys[op.as]!.hotkey, state.genesisHash, nonce, call), signer: signer.address }
                : { signer: signer.address, nonce, call, signature: "0x" };
            const result = state.apply({ _tag: "Call", block: state.block, signed });
            expect(Either.isLeft(result) && result.left._tag === "CallRejected" && result.left.reason).toBe("BadSignature");
            return;
          }
          const pair = keys[op.who]!.hotkey;
          const signed = signCall(pair, state.genesisHash, state.nonceOf(pair.address), op.call);
          const entry: LogEntry = { _tag: "Call", block: state.block, signed };
          const result = state.apply(entry);
          if (op.call._tag === "SetWeights") {
            const last = lastWeights.get(pair.address);
            const rateLimited = Either.isLeft(result) && result.left._tag === "WeightsRateLimited";
            if (Either.isRight(result)) {
              // Accepted weights never come sooner than the rate limit after the previous ones.
              expect(last === undefined || state.block - last >= params.weightsRateLimit).toBe(true);
              lastWeights.set(pair.address, state.block);
              seen.weightsAccepted++;
            }
            if (rateLimited) seen.weightsRateLimited++;
            if (rateLimited) expect(last !== undefined && state.block - last < params.weightsRateLimit).toBe(true);
          }
          if (Either.isRight(result)) {
            store.append(entry, false);
            accepted.push(signed);
          }
        });
        const live = state.toData();
        store.close();
        const replayed = await Effect.runPromise(replayStore(dir));
        expect(replayed.toData()).toEqual(live);
        // Reopening goes through the snapshot (when one was taken) and the log after it.
        const reopened = await Effect.runPromise(openStore(dir, params));
        expect(reopened.state.toData()).toEqual(live);
        reopened.close();
      }),
      { numRuns: 30 },
    );
    expect(seen.weightsAccepted).toBeGreaterThan(0);
    expect(seen.weightsRateLimited).toBeGreaterThan(0);
    expect(seen.snapshots).toBeGreaterThan(0);
  }, 60_000);

  test("a signature from another chain (genesis hash) is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-chain-genesis-"));
    const store = await Effect.runPromise(openStore(dir, params));
    const signed = signCall(keys[0]!.hotkey, `0x${"00".repeat(32)}`, 0, { _tag: "Register", coldkey: keys[0]!.hotkey.address });
    const result = store.state.apply({ _tag: "Call", block: 0, signed });
    expect(Either.isLeft(result) && result.left._tag === "CallRejected" && result.left.reason).toBe("BadSignature");
    const good = signCall(keys[0]!.hotkey, store.state.genesisHash, 0, { _tag: "Register", coldkey: keys[0]!.hotkey.address });
    expect(Either.isRight(store.state.apply({ _tag: "Call", block: 0, signed: good }))).toBe(true);
    store.close();
  });
});
