/**
 * The in-memory local chain: the same conformance suite as the owner and the loopback client
 * (real clock), and under TestClock block times that are exact multiples of the block interval.
 */
import { describe, expect, test } from "bun:test";
import { Context, Duration, Effect, Layer, TestClock, TestContext } from "effect";
import { Chain, identityFromSecret, LocalChain, makeLocalChain, openMemoryBackend } from "../src/index.ts";
import type { Identity } from "../src/index.ts";
import { chainConformance, suiteParams } from "./conformance.ts";

const alice = await Effect.runPromise(identityFromSecret("//Alice"));
const bob = await Effect.runPromise(identityFromSecret("//Bob"));

const layerMemoryChain = (identity: Identity): Layer.Layer<Chain | LocalChain> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const chain = yield* makeLocalChain(yield* openMemoryBackend({ params: suiteParams }), identity);
      return Context.make(LocalChain, chain).pipe(Context.add(Chain, chain));
    }),
  );

chainConformance("openMemoryBackend", () => layerMemoryChain(alice));

describe("in-memory chain on a simulated clock", () => {
  test("blocks every interval of Clock time, stamped with it; two nodes share one chain", async () => {
    const program = Effect.gen(function* () {
      const backend = yield* openMemoryBackend({ params: { ...suiteParams, blockIntervalMs: 500, blocksPerWindow: 6 } });
      const a = yield* makeLocalChain(backend, alice);
      const b = yield* makeLocalChain(backend, bob);
      yield* TestClock.adjust(Duration.millis(500 * 13 + 100));
      const head = yield* a.currentBlock;
      yield* a.register;
      yield* b.register;
      return { head, window2: yield* b.windowStartTime(2), uids: [yield* a.uid, yield* b.uid], neurons: (yield* b.refreshMetagraph).neurons.length, genesis: a.genesisHash };
    });
    const got = await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(TestContext.TestContext)));
    expect(got.head).toEqual({ number: 13, timestampMs: 6500 });
    expect(got.window2).toBe(12 * 500);
    expect(got.uids).toEqual([0, 1]);
    expect(got.neurons).toBe(2);
    expect(got.genesis).toBe(`0x${"00".repeat(32)}`);
  });
});
