import { expect, test } from "bun:test";
import { Chunk, Effect, Stream } from "effect";
import { makeClock } from "../src/index.ts";

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
