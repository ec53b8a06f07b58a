import { describe, expect, test, afterAll, beforeAll } from "bun:test";
import { Chunk, Effect, Either, ManagedRuntime, Stream } from "effect";
import type { Layer } from "effect";
import { Chain, FilesystemCommitment, LocalChain, S3Commitment } from "../src/index.ts";
import type { ChainClock } from "../src/index.ts";

/**
 * The rules the suite's chains are created with: fast blocks and short windows. The weights rate
 * limit (40 blocks = 2 s) must outlast two back-to-back loopback calls, which is what the
 * "too fast" check makes, even when both cores are busy.
 */
export const suiteParams = { blockIntervalMs: 50, blocksPerWindow: 5, weightsRateLimit: 40, permitStake: 10, weightsVersionKey: 3 };

/**
 * The block clock any chain shows — the local chain, and a real Substrate runtime (chopsticks):
 * `advance(n)` makes the chain produce at least n more blocks.
 */
export const clockConformance = (getClock: () => ChainClock, advance: (blocks: number) => Promise<unknown>) => {
  test("the block stream yields every block once, in order, with increasing timestamps", async () => {
    const clock = getClock();
    const start = await Effect.runPromise(clock.currentBlock);
    const collected = Effect.runPromise(Stream.runCollect(Stream.take(clock.blocks, 6)));
    await Bun.sleep(100);
    await advance(3);
    await advance(3);
    const list = Chunk.toReadonlyArray(await collected);
    expect(list[0]!.number).toBeGreaterThan(start.number);
    for (let i = 1; i < list.length; i++) {
      expect(list[i]!.number).toBe(list[i - 1]!.number + 1);
      expect(list[i]!.timestampMs).toBeGreaterThan(list[i - 1]!.timestampMs);
    }
    const head = await Effect.runPromise(clock.currentBlock);
    expect(head.number).toBeGreaterThanOrEqual(list[5]!.number);
  }, 20_000);

  test("block timestamps, windows and window start times agree; unknown blocks are typed errors", async () => {
    const clock = getClock();
    const { head, ts, window, start, future } = await Effect.runPromise(
      Effect.gen(function* () {
        const head = yield* clock.currentBlock;
        const window = clock.windowOf(head.number);
        return {
          head,
          ts: yield* clock.blockTimestamp(head.number),
          window,
          start: yield* clock.windowStartTime(window),
          future: yield* Effect.either(clock.blockTimestamp(head.number + 10_000)),
        };
      }),
    );
    expect(ts).toBe(head.timestampMs);
    expect(window).toBe(Math.floor(head.number / clock.blocksPerWindow));
    expect(start).toBe(await Effect.runPromise(clock.blockTimestamp(window * clock.blocksPerWindow)));
    expect(start).toBeLessThanOrEqual(ts);
    expect(Either.isLeft(future) && future.left._tag).toBe("UnknownBlock");
  }, 20_000);
};

/**
 * One behavioural suite for every `Chain` over the local chain (owner or client): whatever the
 * layer, a participant observes the same clock, registration, commitments and weights.
 */
export const chainConformance = (name: string, makeLayer: () => Layer.Layer<Chain | LocalChain, unknown>) =>
  describe(`Chain conformance: ${name}`, () => {
    let runtime: ManagedRuntime.ManagedRuntime<Chain | LocalChain, unknown>;
    const run = <A, E>(effect: Effect.Effect<A, E, Chain | LocalChain>) => runtime.runPromise(effect);
    beforeAll(async () => {
      runtime = ManagedRuntime.make(makeLayer());
      await runtime.runtime();
    });
    afterAll(() => runtime.dispose());

    clockConformance(() => runtime.runSync(Chain), (n) => Bun.sleep(n * suiteParams.blockIntervalMs + 20));

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

    test("commitments round-trip in the compact (with the declared role) and the reference's legacy format", async () => {
      const fsLocation = FilesystemCommitment.make({ dir: "/tmp/covenant/uploads", role: "peer" });
      const account = "a".repeat(32);
      const r2 = S3Commitment.make({
        endpoint: `https://${account}.r2.cloudflarestorage.com`,
        bucket: account,
        region: "auto",
        accessKeyId: "K".repeat(32),
        secretAccessKey: "s".repeat(64),
        role: "peer",
      });
      const r2Validator = { ...r2, role: "validator" as const };
      for (const [commitment, format] of [[fsLocation, "compact"], [r2, "legacy"], [r2Validator, "compact"]] as const) {
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
    }, 30_000);
  });
