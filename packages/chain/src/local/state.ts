import { decodeAddress, encodeAddress } from "@polkadot/util-crypto";
import { Either, Schema } from "effect";
import type { BlockInfo, Metagraph, Neuron, WeightsRow } from "../Chain.ts";
import {
  CallRejected,
  InvalidWeights,
  NoValidatorPermit,
  NotRegistered,
  RegistrationRefused,
  UnknownBlock,
  WeightsRateLimited,
  WeightVersionKeyTooLow,
} from "../errors.ts";
import type { ChainError } from "../errors.ts";
import { SignedCall, verifyCall } from "./calls.ts";

/** The rules of a local chain, fixed when it is created. */
export const LocalParams = Schema.Struct({
  blockIntervalMs: Schema.Int.pipe(Schema.positive()),
  blocksPerWindow: Schema.Int.pipe(Schema.positive()),
  maxUids: Schema.Int.pipe(Schema.positive()),
  /** Blocks a uid must wait between two weight settings (subtensor's weightsSetRateLimit). */
  weightsRateLimit: Schema.Int.pipe(Schema.nonNegative()),
  /** Stake at or above which a neuron holds a validator permit. */
  permitStake: Schema.Number.pipe(Schema.nonNegative()),
  weightsVersionKey: Schema.Int.pipe(Schema.nonNegative()),
  /** Recent blocks whose timestamps are kept (window-start blocks are kept forever). */
  blockHistory: Schema.Int.pipe(Schema.positive()),
});
export type LocalParams = typeof LocalParams.Type;

export const defaultLocalParams: LocalParams = {
  blockIntervalMs: 12_000,
  blocksPerWindow: 115,
  maxUids: 256,
  weightsRateLimit: 100,
  permitStake: 1000,
  weightsVersionKey: 0,
  blockHistory: 4096,
};

/** One line of the persisted log: a produced block, or a signed call included in a block. */
export const LogEntry = Schema.Union(
  Schema.TaggedStruct("Block", { number: Schema.Int, timestampMs: Schema.Number }),
  Schema.TaggedStruct("Call", { block: Schema.Int, signed: SignedCall }),
);
export type LogEntry = typeof LogEntry.Type;

const NeuronRecord = Schema.Struct({
  hotkey: Schema.String,
  coldkey: Schema.String,
  stake: Schema.Number,
  lastUpdate: Schema.Int,
});
type NeuronRecord = { -readonly [K in keyof typeof NeuronRecord.Type]: (typeof NeuronRecord.Type)[K] };

/** The whole state as plain data: what a snapshot stores and what replays are compared by. */
export const StateData = Schema.Struct({
  genesisHash: Schema.String,
  params: LocalParams,
  block: Schema.Int,
  timestamps: Schema.Array(Schema.Tuple(Schema.Int, Schema.Number)),
  neurons: Schema.Array(NeuronRecord),
  commitments: Schema.Array(Schema.Tuple(Schema.String, Schema.Struct({ block: Schema.Int, data: Schema.String }))),
  weights: Schema.Array(Schema.Tuple(Schema.Int, Schema.Struct({ block: Schema.Int, uids: Schema.Array(Schema.Int), values: Schema.Array(Schema.Int) }))),
  nonces: Schema.Array(Schema.Tuple(Schema.String, Schema.Int)),
});
export type StateData = typeof StateData.Type;

const normaliseAddress = (address: string): string | undefined => {
  try {
    return encodeAddress(decodeAddress(address), 42);
  } catch {
    return undefined;
  }
};

/** The local chain's state machine. `apply` is deterministic: replaying a log rebuilds the same state. */
export class LocalState {
  block = 0;
  private readonly timestamps = new Map<number, number>();
  private readonly neurons: NeuronRecord[] = [];
  private readonly uidOf = new Map<string, number>();
  private readonly commitmentsOf = new Map<string, { block: number; data: string }>();
  private readonly weightsOf = new Map<number, { block: number; uids: ReadonlyArray<number>; values: ReadonlyArray<number> }>();
  private readonly nonces = new Map<string, number>();

  constructor(
    readonly genesisHash: string,
    readonly params: LocalParams,
    genesisTimestampMs: number,
  ) {
    this.timestamps.set(0, genesisTimestampMs);
  }

  static fromData(data: StateData): LocalState {
    const s = new LocalState(data.genesisHash, data.params, 0);
    s.block = data.block;
    s.timestamps.clear();
    for (const [b, t] of data.timestamps) s.timestamps.set(b, t);
    data.neurons.forEach((n, uid) => {
      s.neurons.push({ ...n });
      s.uidOf.set(n.hotkey, uid);
    });
    for (const [k, v] of data.commitments) s.commitmentsOf.set(k, v);
    for (const [k, v] of data.weights) s.weightsOf.set(k, v);
    for (const [k, v] of data.nonces) s.nonces.set(k, v);
    return s;
  }

  toData(): StateData {
    const sorted = <K, V>(m: Map<K, V>): Array<[K, V]> => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      genesisHash: this.genesisHash,
      params: this.params,
      block: this.block,
      timestamps: sorted(this.timestamps),
      neurons: this.neurons.map((n) => ({ ...n })),
      commitments: sorted(this.commitmentsOf),
      weights: sorted(this.weightsOf),
      nonces: sorted(this.nonces),
    };
  }

  get timestampMs(): number {
    return this.timestamps.get(this.block) ?? 0;
  }

  timestampOf(block: number): Either.Either<number, UnknownBlock> {
    const t = this.timestamps.get(block);
    return t === undefined ? Either.left(new UnknownBlock({ block })) : Either.right(t);
  }

  /**
   * The blocks after `after` still in the history window (the last `params.blockHistory`), oldest
   * first. Bounded: a far-behind reader catches up over several polls.
   */
  blocksSince(after: number): BlockInfo[] {
    const out: BlockInfo[] = [];
    for (let b = Math.max(after + 1, this.block - this.params.blockHistory + 1); b <= this.block && out.length < 1000; b++) {
      const t = this.timestamps.get(b);
      if (t !== undefined) out.push({ number: b, timestampMs: t });
    }
    return out;
  }

  nonceOf(account: string): number {
    return this.nonces.get(normaliseAddress(account) ?? account) ?? 0;
  }

  uidOfHotkey(hotkey: string): number | undefined {
    return this.uidOf.get(normaliseAddress(hotkey) ?? hotkey);
  }

  /** Applies one log entry; on failure the state is unchanged. */
  apply(entry: LogEntry): Either.Either<void, ChainError> {
    return entry._tag === "Block" ? this.applyBlock(entry.number, entry.timestampMs) : this.applyCall(entry.block, entry.signed);
  }

  private applyBlock(number: number, timestampMs: number): Either.Either<void, ChainError> {
    if (number !== this.block + 1 || timestampMs < this.timestampMs) return Either.left(new UnknownBlock({ block: number }));
    this.block = number;
    this.timestamps.set(number, timestampMs);
    // Keep recent blocks, and every window's first block (transport upload intervals start there).
    const old = number - this.params.blockHistory;
    if (old > 0 && old % this.params.blocksPerWindow !== 0) this.timestamps.delete(old);
    return Either.void;
  }

  private applyCall(block: number, signed: SignedCall): Either.Either<void, ChainError> {
    if (block !== this.block) return Either.left(new CallRejected({ reason: "Malformed", detail: `call for block ${block} at block ${this.block}` }));
    const signer = normaliseAddress(signed.signer);
    if (signer === undefined) return Either.left(new CallRejected({ reason: "Malformed", detail: `signer ${signed.signer} is not an SS58 address` }));
    if (!verifyCall(this.genesisHash, signed)) {
      return Either.left(new CallRejected({ reason: "BadSignature", detail: `signature does not verify for ${signer} on genesis ${this.genesisHash}` }));
    }
    const expected = this.nonces.get(signer) ?? 0;
    if (signed.nonce !== expected) {
      return Either.left(
        new CallRejected({ reason: signed.nonce < expected ? "StaleNonce" : "FutureNonce", detail: `nonce ${signed.nonce}, expected ${expected}` }),
      );
    }
    const result = this.dispatch(signer, signed);
    // As on Substrate, a validly signed call uses its nonce only when it is accepted here; a
    // refused dispatch leaves no trace, so the log holds only calls that changed the state.
    if (Either.isRight(result)) this.nonces.set(signer, expected + 1);
    return result;
  }

  private dispatch(signer: string, signed: SignedCall): Either.Either<void, ChainError> {
    const call = signed.call;
    switch (call._tag) {
      case "Register": {
        const coldkey = normaliseAddress(call.coldkey);
        if (coldkey === undefined) return Either.left(new CallRejected({ reason: "Malformed", detail: `coldkey ${call.coldkey} is not an SS58 address` }));
        if (this.uidOf.has(signer)) return Either.left(new RegistrationRefused({ reason: "AlreadyRegistered", hotkey: signer }));
        if (this.neurons.length >= this.params.maxUids) return Either.left(new RegistrationRefused({ reason: "SubnetFull", hotkey: signer }));
        this.uidOf.set(signer, this.neurons.length);
        this.neurons.push({ hotkey: signer, coldkey, stake: 0, lastUpdate: this.block });
        return Either.void;
      }
      case "AddStake": {
        const neuron = this.neuronOf(signer);
        if (neuron === undefined) return Either.left(new NotRegistered({ hotkey: signer }));
        neuron.stake += call.amount;
        return Either.void;
      }
      case "SetCommitment": {
        if (!this.uidOf.has(signer)) return Either.left(new NotRegistered({ hotkey: signer }));
        this.commitmentsOf.set(signer, { block: this.block, data: call.data });
        return Either.void;
      }
      case "SetWeights": {
        const uid = this.uidOf.get(signer);
        const neuron = this.neuronOf(signer);
        if (uid === undefined || neuron === undefined) return Either.left(new NotRegistered({ hotkey: signer }));
        if (neuron.stake < this.params.permitStake) return Either.left(new NoValidatorPermit({ hotkey: signer }));
        if (call.versionKey < this.params.weightsVersionKey) {
          return Either.left(new WeightVersionKeyTooLow({ given: call.versionKey, required: this.params.weightsVersionKey }));
        }
        const problem = this.checkWeights(call.uids, call.values);
        if (problem !== undefined) return Either.left(new InvalidWeights({ reason: problem }));
        const last = this.weightsOf.get(uid);
        if (last !== undefined && this.block - last.block < this.params.weightsRateLimit) {
          return Either.left(new WeightsRateLimited({ lastSetBlock: last.block, rateLimitBlocks: this.params.weightsRateLimit, currentBlock: this.block }));
        }
        // Stored max-upscaled to 65535, as subtensor does.
        const max = call.values.reduce((m, v) => Math.max(m, v), 0);
        const values = call.values.map((v) => (max === 0 ? 0 : Math.round((v * 65535) / max)));
        this.weightsOf.set(uid, { block: this.block, uids: [...call.uids], values });
        neuron.lastUpdate = this.block;
        return Either.void;
      }
    }
  }

  private neuronOf(hotkey: string): NeuronRecord | undefined {
    const uid = this.uidOf.get(hotkey);
    return uid === undefined ? undefined : this.neurons[uid];
  }

  private checkWeights(uids: ReadonlyArray<number>, values: ReadonlyArray<number>): string | undefined {
    if (uids.length !== values.length) return `${uids.length} uids but ${values.length} values`;
    if (new Set(uids).size !== uids.length) return "duplicate uid";
    const unknown = uids.find((u) => u >= this.neurons.length);
    return unknown === undefined ? undefined : `uid ${unknown} is not registered`;
  }

  metagraph(): Metagraph {
    // Incentive: the stake-weighted sum of the permitted validators' normalised weights (the
    // observable outcome of consensus without Yuma's clipping), normalised to sum to 1.
    const raw = new Array<number>(this.neurons.length).fill(0);
    for (const [uid, row] of this.weightsOf) {
      const validator = this.neurons[uid];
      if (validator === undefined || validator.stake < this.params.permitStake) continue;
      const total = row.values.reduce((a, b) => a + b, 0);
      if (total === 0) continue;
      row.uids.forEach((u, i) => {
        raw[u] = (raw[u] ?? 0) + (validator.stake * (row.values[i] ?? 0)) / total;
      });
    }
    const sum = raw.reduce((a, b) => a + b, 0);
    const neurons: Neuron[] = this.neurons.map((n, uid) => ({
      uid,
      hotkey: n.hotkey,
      coldkey: n.coldkey,
      stake: n.stake,
      validatorPermit: n.stake >= this.params.permitStake,
      incentive: sum === 0 ? 0 : (raw[uid] ?? 0) / sum,
      lastUpdate: n.lastUpdate,
    }));
    return { block: this.block, neurons };
  }

  commitments(): ReadonlyArray<{ hotkey: string; uid: number | undefined; block: number; data: string }> {
    return [...this.commitmentsOf].map(([hotkey, c]) => ({ hotkey, uid: this.uidOf.get(hotkey), block: c.block, data: c.data }));
  }

  weights(): ReadonlyArray<WeightsRow> {
    return [...this.weightsOf]
      .sort(([a], [b]) => a - b)
      .map(([uid, row]) => ({ uid, block: row.block, weights: row.uids.map((u, i): readonly [number, number] => [u, row.values[i] ?? 0]) }));
  }
}
