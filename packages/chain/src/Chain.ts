import type { Effect, Either, Stream } from "effect";
import { Context } from "effect";
import type { Commitment } from "./Commitment.ts";
import type { ChainError, CommitmentFormatError } from "./errors.ts";
import type { Identity } from "./Identity.ts";

/** A produced block and its timestamp (the chain's `Timestamp.Now`, milliseconds). */
export interface BlockInfo {
  readonly number: number;
  readonly timestampMs: number;
}

/** One uid of the subnet. Stake is in whole units (TAO / alpha, not rao). */
export interface Neuron {
  readonly uid: number;
  readonly hotkey: string;
  readonly coldkey: string;
  readonly stake: number;
  readonly validatorPermit: boolean;
  /** Share of the subnet's incentive, in [0, 1]. */
  readonly incentive: number;
  /** Block of the neuron's last registration or weights. */
  readonly lastUpdate: number;
}

export interface Metagraph {
  readonly block: number;
  readonly neurons: ReadonlyArray<Neuron>;
}

/** A hotkey's committed string, decoded when it is in a known format. */
export interface CommitmentRecord {
  readonly hotkey: string;
  readonly uid: number | undefined;
  readonly block: number;
  readonly raw: string;
  readonly commitment: Either.Either<Commitment, CommitmentFormatError>;
}

/** A validator's weights as stored on chain: (uid, u16 weight) pairs, max-normalised to 65535. */
export interface WeightsRow {
  readonly uid: number;
  readonly block: number;
  readonly weights: ReadonlyArray<readonly [number, number]>;
}

export interface WeightInput {
  readonly uid: number;
  readonly weight: number;
}

/** The window a block belongs to. */
export const windowOfBlock = (block: number, blocksPerWindow: number): number => Math.floor(block / blocksPerWindow);

/** The first block of a window. */
export const firstBlockOfWindow = (window: number, blocksPerWindow: number): number => window * blocksPerWindow;

export interface ChainShape {
  /** This node: the hotkey signs commitments and weights. */
  readonly identity: Identity;
  readonly blocksPerWindow: number;
  readonly currentBlock: Effect.Effect<BlockInfo, ChainError>;
  /** Every new block, in order, from the next one on; survives reconnects. */
  readonly blocks: Stream.Stream<BlockInfo, ChainError>;
  readonly blockTimestamp: (block: number) => Effect.Effect<number, ChainError>;
  readonly windowOf: (block: number) => number;
  /** When the window's first block was produced: the transport's upload interval starts there. */
  readonly windowStartTime: (window: number) => Effect.Effect<number, ChainError>;
  /** The metagraph, cached (the reference resyncs it every ~10 minutes). */
  readonly metagraph: Effect.Effect<Metagraph, ChainError>;
  /** Reads the metagraph from the chain now and replaces the cache. */
  readonly refreshMetagraph: Effect.Effect<Metagraph, ChainError>;
  /** This identity's uid, if registered. */
  readonly uid: Effect.Effect<number | undefined, ChainError>;
  /** Registers this hotkey (local chain; on subtensor registration is the coldkey's: btcli). */
  readonly register: Effect.Effect<number, ChainError>;
  readonly commit: (commitment: Commitment, format?: "compact" | "legacy") => Effect.Effect<void, ChainError>;
  readonly commitments: Effect.Effect<ReadonlyArray<CommitmentRecord>, ChainError>;
  /** Sets this validator's weights (any non-negative scale; the chain max-normalises them). */
  readonly setWeights: (weights: ReadonlyArray<WeightInput>) => Effect.Effect<void, ChainError>;
  readonly weights: Effect.Effect<ReadonlyArray<WeightsRow>, ChainError>;
}

/** The chain a participant follows: block clock, metagraph, commitments and weights. */
export class Chain extends Context.Tag("@covenant/chain/Chain")<Chain, ChainShape>() {}

/** Float weights to u16, max-normalised to 65535 the way subtensor stores them. */
export const weightsToU16 = (weights: ReadonlyArray<WeightInput>): { uids: number[]; values: number[] } | string => {
  const seen = new Set<number>();
  for (const w of weights) {
    if (!Number.isInteger(w.uid) || w.uid < 0 || w.uid > 65535) return `uid ${w.uid} is not a u16`;
    if (seen.has(w.uid)) return `uid ${w.uid} appears twice`;
    seen.add(w.uid);
    if (!Number.isFinite(w.weight) || w.weight < 0) return `weight for uid ${w.uid} is ${w.weight}; weights must be finite and >= 0`;
  }
  const max = weights.reduce((m, w) => Math.max(m, w.weight), 0);
  const kept = max === 0 ? [] : weights.filter((w) => Math.round((w.weight / max) * 65535) > 0);
  return { uids: kept.map((w) => w.uid), values: kept.map((w) => Math.round((w.weight / max) * 65535)) };
};
