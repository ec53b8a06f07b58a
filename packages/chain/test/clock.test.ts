import { expect, test } from "bun:test";
import { Chunk, Effect, Stream } from "effect";
import { makeClock, measureBlockTimeMs } from "../src/index.ts";

test("mock node: skipped heads are filled in, repeated or older heads dropped", async () => {
  const at = (number: number) => ({ number, timestampMs: 1_000 * number + 7 });
  const clock = makeClock({
    blocksPerWindow: 3,
    head: Effect.succeed(at(4)),
    // What a best-head subscription can deliver: a jump, a repeat after resubscribing, a reorg back.
    heads: Stream.fromIterable([4, 5, 8, 8, 7, 9].map(at)),
    timestampOf: (block) => Effect.succeed(at(block).timestampMs),
  });
  const blocks = Chunk.toReadonlyArray(await Effect.runPromise(Stream.runCollect(clock.blocks)));
  expect(blocks).toEqual([5, 6, 7, 8, 9].map(at));
  expect(await Effect.runPromise(clock.windowStartTime(2))).toBe(at(6).timestampMs);
});

test("mock node: 12 s blocks and 115-block windows at mainnet heights; the measured block time is 12 s", async () => {
  // Finney's scale: block ~6.5M, timestamps ~1.8e12 ms, one block every 12 s (with 0-400 ms jitter).
  const genesisMs = 1_700_000_000_000;
  const jitter = (n: number) => (n * 7919) % 400;
  const at = (number: number) => ({ number, timestampMs: number === 0 ? 0 : genesisMs + 12_000 * number + jitter(number) });
  const head = 6_500_037;
  const clock = makeClock({ blocksPerWindow: 115, head: Effect.succeed(at(head)), heads: Stream.fromIterable([head + 1, head + 3].map(at)), timestampOf: (b) => Effect.succeed(at(b).timestampMs) });
  const window = clock.windowOf(head);
  expect(window).toBe(Math.floor(6_500_037 / 115));
  expect(clock.windowOf(window * 115)).toBe(window);
  expect(clock.windowOf(window * 115 - 1)).toBe(window - 1);
  expect(await Effect.runPromise(clock.windowStartTime(window + 1))).toBe(at((window + 1) * 115).timestampMs);
  // Window starts are 115 x 12 s apart (+- jitter) and every timestamp stays an exact integer.
  const gap = (await Effect.runPromise(clock.windowStartTime(window + 1))) - (await Effect.runPromise(clock.windowStartTime(window)));
  expect(Math.abs(gap - 1_380_000)).toBeLessThan(400);
  expect(Chunk.toReadonlyArray(await Effect.runPromise(Stream.runCollect(clock.blocks))).map((b) => b.number)).toEqual([head + 1, head + 2, head + 3]);
  const measured = await Effect.runPromise(measureBlockTimeMs(clock));
  expect(Math.abs((measured ?? 0) - 12_000)).toBeLessThan(400 / 20 + 1);
  // The genesis block (timestamp 0) is never part of the measurement; with one block there is none.
  const young = makeClock({ blocksPerWindow: 115, head: Effect.succeed(at(3)), heads: Stream.empty, timestampOf: (b) => Effect.succeed(at(b).timestampMs) });
  expect(await Effect.runPromise(measureBlockTimeMs(young))).toBeCloseTo(12_000, -3);
  const newborn = makeClock({ blocksPerWindow: 115, head: Effect.succeed(at(1)), heads: Stream.empty, timestampOf: (b) => Effect.succeed(at(b).timestampMs) });
  expect(await Effect.runPromise(measureBlockTimeMs(newborn))).toBeUndefined();
});
