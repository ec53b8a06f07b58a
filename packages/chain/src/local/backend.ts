import { Schema } from "effect";
import type { Effect } from "effect";
import type { BlockInfo } from "../Chain.ts";
import type { ChainError } from "../errors.ts";
import type { SignedCall } from "./calls.ts";
import { LocalParams } from "./state.ts";

/** Everything a participant reads at once: metagraph, raw commitments, weights. */
export const LocalView = Schema.Struct({
  metagraph: Schema.Struct({
    block: Schema.Int,
    neurons: Schema.Array(
      Schema.Struct({
        uid: Schema.Int,
        hotkey: Schema.String,
        coldkey: Schema.String,
        stake: Schema.Number,
        validatorPermit: Schema.Boolean,
        incentive: Schema.Number,
        lastUpdate: Schema.Int,
      }),
    ),
  }),
  commitments: Schema.Array(
    Schema.Struct({ hotkey: Schema.String, uid: Schema.UndefinedOr(Schema.Int), block: Schema.Int, data: Schema.String }),
  ),
  weights: Schema.Array(
    Schema.Struct({ uid: Schema.Int, block: Schema.Int, weights: Schema.Array(Schema.Tuple(Schema.Int, Schema.Int)) }),
  ),
});
export type LocalView = typeof LocalView.Type;

export const BlockInfoSchema = Schema.Struct({ number: Schema.Int, timestampMs: Schema.Number });

export const ChainInfo = Schema.Struct({ genesisHash: Schema.String, params: LocalParams });
export type ChainInfo = typeof ChainInfo.Type;

/**
 * The local chain as one process sees it: the owner implements it on its state, a client over
 * loopback. `makeLocalChain` builds the same `Chain` service on either, so they behave alike.
 */
export interface LocalBackend {
  readonly info: ChainInfo;
  readonly head: Effect.Effect<BlockInfo, ChainError>;
  /** Blocks after `after` that are still in history, waiting up to `waitMs` for one to appear. */
  readonly blocksAfter: (after: number, waitMs: number) => Effect.Effect<ReadonlyArray<BlockInfo>, ChainError>;
  readonly timestamp: (block: number) => Effect.Effect<number, ChainError>;
  readonly nonce: (account: string) => Effect.Effect<number, ChainError>;
  readonly uidOf: (hotkey: string) => Effect.Effect<number | undefined, ChainError>;
  readonly submit: (signed: SignedCall) => Effect.Effect<void, ChainError>;
  readonly view: Effect.Effect<LocalView, ChainError>;
}
