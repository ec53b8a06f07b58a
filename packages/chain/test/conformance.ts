import { describe, expect, test, afterAll, beforeAll } from "bun:test";
import { Chunk, Effect, Either, ManagedRuntime, Stream } from "effect";
import type { Layer } from "effect";
import { Chain, FilesystemCommitment, LocalChain, S3Commitment } from "../src/index.ts";

/** The rules the suite's chains are created with: fast blocks, short windows and rate limits. */
export const suiteParams = { blockIntervalMs: 50, blocksPerWindow: 5, weightsRateLimit: 6, permitStake: 10, weightsVersionKey: 3 };

/**
 * One behavioural suite for every `Chain` over the local chain (owner or client): whatever the
 * layer, a participant observes the same clock, registration, commitments and weights.
 */
export const chainConformance = (name: string, makeLayer: () => Layer.Layer<Chain | LocalChain, unknown>) =>
  describe(`Chain conformance: ${name}`, () => {
    let runtime: ManagedRuntime.ManagedRuntime<Chain | LocalChain, unknown>;
    const run = <A, E>(effect: Effect.Effect<A, E, Chain | LocalChain>) => runtime.runPromise(effect);
    beforeAll(() => {
      runtime = ManagedRuntime.make(makeLayer());
    });
    afterAll(() => runtime.dispose());

    test("the block stream yields consecutive blocks with non-decreasing timestamps", async () => {
      const blocks = await run(Effect.flatMap(Chain, (c) => Stream.runCollect(Stream.take(c.blocks, 6))));
      const list = Chunk.toReadonlyArray(blocks);
      for (let i = 1; i < list.length; i++) {
        expect(list[i]!.number).toBe(list[i - 1]!.number + 1);
        expect(list[i]!.timestampMs).toBeGreaterThanOrEqual(list[i - 1]!.timestampMs);
      }
      const head = await run(Effect.flatMap(Chain, (c) => c.currentBlock));
      expect(head.number).toBeGreaterThanOrEqual(list[5]!.number);
      // Blocks are ~50 ms apart: six of them span at least ~4 intervals of wall time.
      expect(list[5]!.timestampMs - list[0]!.timestampMs).toBeGreaterThanOrEqual(4 * 45);
    }, 10_000);

    test("block timestamps, windows and window start times agree", async () => {
      const { head, ts, window, start, bpw, future } = await run(
        Effect.gen(function* () {
          const c = yield* Chain;
          const head = yield* c.currentBlock;
          const window = c.windowOf(head.number);
          return {
            head,
            ts: yield* c.blockTimestamp(head.number),
            window,
            start: yield* c.windowStartTime(window),
            bpw: c.blocksPerWindow,
            future: yield* Effect.either(c.blockTimestamp(head.number + 10_000)),
          };
        }),
      );
      expect(ts).toBe(head.timestampMs);
      expect(window).toBe(Math.floor(head.number / bpw));
      const firstBlockTime = await run(Effect.flatMap(Chain, (c) => c.blockTimestamp(window * bpw)));
      expect(start).toBe(firstBlockTime);
      expect(start).toBeLessThanOrEqual(ts);
      expect(Either.isLeft(future) && future.left._tag).toBe("UnknownBlock");
    });

    test("register puts the hotkey and its coldkey in the metagraph", async () => {
      const { uid, metagraph, identity, again } = await run(
        Effect.gen(function* () {
          const c = yield* Chain;
          const uid = yield* c.register;
          return { uid, metagraph: yield* c.refreshMetagraph, identity: c.identity, again: yield* Effect.either(c.register) };
        }),
      );
      const me = metagraph.neurons.find((n) => n.uid === uid);
      expect(me?.hotkey).toBe(identity.hotkey.address);
      expect(me?.coldkey).toBe(identity.coldkey);
      expect(me?.validatorPermit).toBe(false);
      expect(Either.isLeft(again) && again.left._tag).toBe("RegistrationRefused");
      expect(await run(Effect.flatMap(Chain, (c) => c.uid))).toBe(uid);
    });

    test("commitments round-trip in the compact and the reference's legacy format", async () => {
      const fsLocation = FilesystemCommitment.make({ dir: "/tmp/covenant/uploads" });
      const account = "a".repeat(32);
      const r2 = S3Commitment.make({
        endpoint: `https://${account}.r2.cloudflarestorage.com`,
        bucket: account,
        region: "auto",
        accessKeyId: "K".repeat(32),
        secretAccessKey: "s".repeat(64),
      });
      for (const [commitment, format] of [[fsLocation, "compact"], [r2, "legacy"], [r2, "compact"]] as const) {
        const records = await run(
          Effect.gen(function* () {
            const c = yield* Chain;
            yield* c.commit(commitment, format);
            return { records: yield* c.commitments, me: c.identity.hotkey.address };
          }),
        );
        const mine = records.records.find((r) => r.hotkey === records.me);
        expect(mine).toBeDefined();
        expect(mine?.raw.length).toBeLessThanOrEqual(384);
        if (format === "legacy") expect(mine?.raw).toBe(account + "K".repeat(32) + "s".repeat(64));
        expect(mine && Either.isRight(mine.commitment) ? mine.commitment.right : undefined).toEqual(commitment);
      }
    });

    test("weights need a validator permit, respect the version key and the rate limit", async () => {
      const outcome = await run(
        Effect.gen(function* () {
          const c = yield* Chain;
          const local = yield* LocalChain;
          const uid = (yield* c.uid) ?? -1;
          const noPermit = yield* Effect.either(c.setWeights([{ uid, weight: 1 }]));
          yield* local.addStake(suiteParams.permitStake);
          const invalid = yield* Effect.either(c.setWeights([{ uid, weight: Number.NaN }]));
          yield* c.setWeights([{ uid, weight: 0.25 }]);
          const tooFast = yield* Effect.either(c.setWeights([{ uid, weight: 1 }]));
          const rows = yield* c.weights;
          const metagraph = yield* c.refreshMetagraph;
          return { uid, noPermit, invalid, tooFast, rows, metagraph };
        }),
      );
      expect(Either.isLeft(outcome.noPermit) && outcome.noPermit.left._tag).toBe("NoValidatorPermit");
      expect(Either.isLeft(outcome.invalid) && outcome.invalid.left._tag).toBe("InvalidWeights");
      expect(Either.isLeft(outcome.tooFast) && outcome.tooFast.left._tag).toBe("WeightsRateLimited");
      const row = outcome.rows.find((r) => r.uid === outcome.uid);
      // A single weight, max-normalised, is stored as 65535 whatever its scale.
      expect(row?.weights).toEqual([[outcome.uid, 65535]]);
      const me = outcome.metagraph.neurons.find((n) => n.uid === outcome.uid);
      expect(me?.validatorPermit).toBe(true);
      expect(me?.stake).toBe(suiteParams.permitStake);
      expect(me?.incentive).toBe(1);
      expect(me?.lastUpdate).toBe(row?.block ?? -1);
    });

    test("after the rate limit has passed weights can be set again", async () => {
      const result = await run(
        Effect.gen(function* () {
          const c = yield* Chain;
          const uid = (yield* c.uid) ?? -1;
          const last = (yield* c.weights).find((r) => r.uid === uid)?.block ?? 0;
          yield* Stream.runDrain(Stream.takeUntil(c.blocks, (b) => b.number >= last + suiteParams.weightsRateLimit));
          return yield* Effect.either(c.setWeights([{ uid, weight: 2 }]));
        }),
      );
      expect(Either.isRight(result)).toBe(true);
    }, 10_000);
  });
