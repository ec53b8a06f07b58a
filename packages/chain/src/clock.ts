import { Effect, Stream } from "effect";
import type { BlockInfo, ChainShape } from "./Chain.ts";
import { firstBlockOfWindow, windowOfBlock } from "./Chain.ts";
import type { ChainError } from "./errors.ts";

/** The block-clock part of `Chain`. */
export type ChainClock = Pick<ChainShape, "blocksPerWindow" | "currentBlock" | "blocks" | "blockTimestamp" | "windowOf" | "windowStartTime">;

/**
 * A clock over a node that reports best heads: the stream yields every block number once, in
 * increasing order, from the block after the head at subscription — heads the node skipped are
 * filled in from their timestamps, and heads that repeat or go back (reorgs, resubscriptions) are
 * dropped.
 */
export const makeClock = (source: {
  readonly blocksPerWindow: number;
  readonly head: Effect.Effect<BlockInfo, ChainError>;
  readonly heads: Stream.Stream<BlockInfo, ChainError>;
  readonly timestampOf: (block: number) => Effect.Effect<number, ChainError>;
}): ChainClock => {
  const fill = (from: number, to: BlockInfo) =>
    Effect.map(
      Effect.forEach(
        Array.from({ length: to.number - from }, (_, i) => from + i),
        (number) => Effect.map(source.timestampOf(number), (timestampMs) => ({ number, timestampMs })),
      ),
      (missing) => [...missing, to],
    );
  const blocks = Stream.unwrap(
    Effect.map(source.head, (head) =>
      source.heads.pipe(
        Stream.mapAccumEffect(head.number, (last, b) =>
          b.number <= last ? Effect.succeed([last, [] as BlockInfo[]] as const) : Effect.map(fill(last + 1, b), (bs) => [b.number, bs] as const),
        ),
        Stream.flattenIterables,
      ),
    ),
  );
  return clockOver({ ...source, blocks });
};

/** The clock over a stream that already yields every block once, in order (windows derive from it). */
export const clockOver = (source: {
  readonly blocksPerWindow: number;
  readonly head: Effect.Effect<BlockInfo, ChainError>;
  readonly blocks: Stream.Stream<BlockInfo, ChainError>;
  readonly timestampOf: (block: number) => Effect.Effect<number, ChainError>;
}): ChainClock => ({
  blocksPerWindow: source.blocksPerWindow,
  currentBlock: source.head,
  blocks: source.blocks,
  blockTimestamp: source.timestampOf,
  windowOf: (block) => windowOfBlock(block, source.blocksPerWindow),
  windowStartTime: (window) => source.timestampOf(firstBlockOfWindow(window, source.blocksPerWindow)),
});


/**
 * The chain's block time as it is, from the timestamps of the last `blocks` blocks (the genesis
 * block, whose timestamp is 0 on Substrate, is never used); `undefined` before two blocks exist.
 */
export const measureBlockTimeMs = (
  clock: Pick<ChainClock, "currentBlock" | "blockTimestamp">,
  blocks = 20,
): Effect.Effect<number | undefined, ChainError> =>
  Effect.gen(function* () {
    const head = yield* clock.currentBlock;
    const from = Math.max(1, head.number - Math.max(1, blocks));
    if (head.number <= from) return undefined;
    const first = yield* clock.blockTimestamp(from);
    return (head.timestampMs - first) / (head.number - from);
  });
