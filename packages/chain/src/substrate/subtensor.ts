import type { ApiPromise } from "@polkadot/api";
import type { KeyringPair } from "@polkadot/keyring/types";
import type { Registry } from "@polkadot/types/types";
import { hexToU8a, isHex } from "@polkadot/util";
import { randomAsU8a } from "@polkadot/util-crypto";
import { Duration, Effect, Either, Layer, Ref, Schedule, Stream } from "effect";
import type { Scope } from "effect";
import type { BlockInfo, ChainShape, CommitmentRecord, Metagraph, Neuron, WeightsRow } from "../Chain.ts";
import { Chain, weightsToU16 } from "../Chain.ts";
import { makeClock } from "../clock.ts";
import { decodeCommitment, encodeCommitment } from "../Commitment.ts";
import { ChainUnavailable, describeCause, InvalidWeights, RegistrationRefused, SubnetNotFound, UnsupportedWeightsPath } from "../errors.ts";
import type { ChainError, ChainTimeout, DispatchFailed, RuntimeMismatch, UnknownBlock } from "../errors.ts";
import type { Identity } from "../Identity.ts";
import { connectSubstrate } from "./node.ts";
import type { SubstrateNode } from "./node.ts";
import { classifyDispatchError, commitmentFields, commitmentText, commitRevealHash, subtensorRequirements } from "./subtensorCalls.ts";
import type { SubtensorCall } from "./subtensorCalls.ts";

const raoPerUnit = 1e9;

/** A neuron as the chain stores it (stake in rao, incentive as u16). */
export interface RawNeuron {
  readonly uid: number;
  readonly hotkey: string;
  readonly coldkey: string;
  readonly stakeRao: bigint;
  readonly validatorPermit: boolean;
  readonly incentiveU16: number;
  readonly lastUpdate: number;
}

export interface SubnetWeightsConfig {
  readonly commitRevealEnabled: boolean;
  /** `commitRevealWeightsVersion` where the runtime has it; 3+ means drand-timelocked commits. */
  readonly commitRevealVersion: number | undefined;
  readonly versionKey: number;
  readonly rateLimit: number;
  readonly tempo: number;
}

/**
 * The subtensor surface the typed layer uses, so that layer can be tested against an injected
 * implementation; `makeSubtensorPort` implements it on a connected @polkadot/api.
 */
export interface SubtensorPort {
  /** The node's address, for errors. */
  readonly endpoint: string;
  readonly registry: Registry;
  readonly head: Effect.Effect<BlockInfo, ChainUnavailable>;
  readonly blocks: Stream.Stream<BlockInfo, ChainUnavailable>;
  readonly timestampOf: (block: number) => Effect.Effect<number, ChainUnavailable | UnknownBlock>;
  readonly neurons: (netuid: number) => Effect.Effect<ReadonlyArray<RawNeuron>, ChainUnavailable>;
  readonly commitments: (netuid: number) => Effect.Effect<ReadonlyArray<{ hotkey: string; block: number; fields: ReadonlyArray<Uint8Array> }>, ChainUnavailable>;
  readonly weights: (netuid: number) => Effect.Effect<ReadonlyArray<{ uid: number; weights: ReadonlyArray<readonly [number, number]> }>, ChainUnavailable>;
  readonly uidOf: (netuid: number, hotkey: string) => Effect.Effect<number | undefined, ChainUnavailable>;
  /** How many uids the subnet has (`subnetworkN`); `undefined` when there is no such subnet. */
  readonly subnetSize: (netuid: number) => Effect.Effect<number | undefined, ChainUnavailable>;
  readonly weightsConfig: (netuid: number) => Effect.Effect<SubnetWeightsConfig, ChainUnavailable>;
  /** Builds the call through the runtime's metadata, signs, submits, waits for inclusion. */
  readonly submit: (call: SubtensorCall, signer: KeyringPair) => Effect.Effect<void, ChainUnavailable | DispatchFailed | ChainTimeout>;
}

export interface SubtensorOptions {
  readonly netuid: number;
  readonly identity: Identity;
  /** The protocol's window length in blocks (the reference uses 115). */
  readonly blocksPerWindow: number;
  /** How long `metagraph` serves its cache (the reference resyncs every ~10 minutes). */
  readonly metagraphTtlMs?: number;
  /** Blocks between reveal attempts after a too-early reveal. */
  readonly revealRetryBlocks?: number;
}

interface PendingReveal {
  readonly commitBlock: number;
  readonly nextTryBlock: number;
  readonly call: Extract<SubtensorCall, { _tag: "RevealWeights" }>;
}

/**
 * The `Chain` service over a subtensor port; also returns the reveal loop to run beside it.
 * Fails with `SubnetNotFound` when the netuid names no subnet.
 */
export const makeSubtensorChain = (
  port: SubtensorPort,
  options: SubtensorOptions,
): Effect.Effect<{ readonly chain: ChainShape; readonly revealDue: (block: number) => Effect.Effect<void, ChainError> }, SubnetNotFound | ChainUnavailable> =>
  Effect.gen(function* () {
    const { netuid, identity, blocksPerWindow } = options;
    if ((yield* port.subnetSize(netuid)) === undefined) return yield* new SubnetNotFound({ endpoint: port.endpoint, netuid });
    const hotkey = identity.hotkey.address;
    const cache = yield* Ref.make<{ at: number; metagraph: Metagraph } | undefined>(undefined);
    const pending = yield* Ref.make<PendingReveal | undefined>(undefined);

    const refreshMetagraph = Effect.gen(function* () {
      const head = yield* port.head;
      const raw = yield* port.neurons(netuid);
      const neurons: Neuron[] = raw.map((n) => ({
        uid: n.uid,
        hotkey: n.hotkey,
        coldkey: n.coldkey,
        stake: Number(n.stakeRao) / raoPerUnit,
        validatorPermit: n.validatorPermit,
        incentive: n.incentiveU16 / 65535,
        lastUpdate: n.lastUpdate,
      }));
      const metagraph = { block: head.number, neurons };
      yield* Ref.set(cache, { at: Date.now(), metagraph });
      return metagraph;
    });
    const ttl = options.metagraphTtlMs ?? 600_000;
    const metagraph = Effect.flatMap(Ref.get(cache), (c) => (c !== undefined && Date.now() - c.at < ttl ? Effect.succeed(c.metagraph) : refreshMetagraph));

    const classify = (error: ChainUnavailable | DispatchFailed | ChainTimeout, config: SubnetWeightsConfig, versionKey: number) =>
      error._tag !== "DispatchFailed"
        ? Effect.fail(error)
        : Effect.gen(function* () {
            const head = yield* Effect.orElseSucceed(port.head, () => ({ number: -1, timestampMs: 0 }));
            const uid = yield* Effect.orElseSucceed(port.uidOf(netuid, hotkey), () => undefined);
            const cached = yield* Ref.get(cache);
            const lastSetBlock = cached?.metagraph.neurons.find((n) => n.uid === uid)?.lastUpdate ?? -1;
            return yield* Effect.fail(
              classifyDispatchError(error, {
                endpoint: port.endpoint,
                hotkey,
                netuid,
                versionKey,
                requiredVersionKey: config.versionKey,
                rateLimit: config.rateLimit,
                lastSetBlock,
                currentBlock: head.number,
              }),
            );
          });

    const setWeights: ChainShape["setWeights"] = (weights) =>
      Effect.gen(function* () {
        const u16 = weightsToU16(weights);
        if (typeof u16 === "string") return yield* new InvalidWeights({ reason: u16 });
        // Subtensor refuses an empty vector (WeightVecLengthIsLow), which is what all-zero weights
        // normalise to; say so before paying for the call.
        if (u16.uids.length === 0) {
          return yield* new InvalidWeights({ reason: `all ${weights.length} weights are zero (or round to 0 of 65535): subtensor refuses an empty weight vector; nothing was sent` });
        }
        const size = yield* port.subnetSize(netuid);
        if (size === undefined) return yield* new SubnetNotFound({ endpoint: port.endpoint, netuid });
        const unknown = u16.uids.filter((uid) => uid >= size);
        if (unknown.length > 0) {
          return yield* new InvalidWeights({ reason: `uid ${unknown.join(", ")} does not exist on subnet ${netuid} (uids 0..${size - 1}); nothing was sent` });
        }
        const config = yield* port.weightsConfig(netuid);
        const versionKey = config.versionKey;
        if (!config.commitRevealEnabled) {
          return yield* Effect.catchAll(
            port.submit({ _tag: "SetWeights", netuid, dests: u16.uids, weights: u16.values, versionKey }, identity.hotkey),
            (e) => classify(e, config, versionKey),
          );
        }
        if (config.commitRevealVersion !== undefined && config.commitRevealVersion >= 3) {
          return yield* new UnsupportedWeightsPath({
            netuid,
            reason: `subnet ${netuid} uses commit-reveal v${config.commitRevealVersion} (drand-timelocked commits: commitTimelockedWeights/commitCrv3Weights); this client only does the hash commit-reveal (v2)`,
          });
        }
        const saltBytes = randomAsU8a(16);
        const salt = Array.from({ length: 8 }, (_, i) => saltBytes[2 * i]! * 256 + saltBytes[2 * i + 1]!);
        const commitHash = commitRevealHash(port.registry, { hotkey: identity.hotkey.publicKey, netuid, uids: u16.uids, values: u16.values, salt, versionKey });
        yield* Effect.catchAll(port.submit({ _tag: "CommitWeights", netuid, commitHash }, identity.hotkey), (e) => classify(e, config, versionKey));
        const head = yield* port.head;
        // Revealed once the next epoch has begun (see revealDue).
        yield* Ref.set(pending, {
          commitBlock: head.number,
          nextTryBlock: head.number + config.tempo,
          call: { _tag: "RevealWeights", netuid, uids: u16.uids, values: u16.values, salt, versionKey },
        });
      });

    const revealDue = (block: number): Effect.Effect<void, ChainError> =>
      Effect.gen(function* () {
        const reveal = yield* Ref.get(pending);
        if (reveal === undefined || block < reveal.nextTryBlock) return;
        const config = yield* port.weightsConfig(netuid);
        const result = yield* Effect.either(port.submit(reveal.call, identity.hotkey));
        if (Either.isRight(result)) return yield* Ref.set(pending, undefined);
        const error = result.left;
        const retryAt = block + (options.revealRetryBlocks ?? Math.max(1, Math.floor(config.tempo / 4)));
        if (error._tag === "DispatchFailed" && error.error === "RevealTooEarly") {
          return yield* Ref.set(pending, { ...reveal, nextTryBlock: retryAt });
        }
        // No answer (timeout, lost connection) is not a refusal: keep the reveal and try again later
        // (a reveal that did land then fails as already revealed, and is dropped).
        if (error._tag !== "DispatchFailed") {
          yield* Ref.set(pending, { ...reveal, nextTryBlock: retryAt });
          return yield* Effect.fail(error);
        }
        yield* Ref.set(pending, undefined);
        return yield* classify(error, config, reveal.call.versionKey);
      });

    const commitments = Effect.gen(function* () {
      const rows = yield* port.commitments(netuid);
      const neurons = yield* port.neurons(netuid);
      const uidOf = new Map(neurons.map((n) => [n.hotkey, n.uid]));
      return rows.map((r): CommitmentRecord => {
        const raw = commitmentText(r.fields);
        return { hotkey: r.hotkey, uid: uidOf.get(r.hotkey), block: r.block, raw, commitment: Effect.runSync(Effect.either(decodeCommitment(raw))) };
      });
    });

    const weightsRows = Effect.gen(function* () {
      const rows = yield* port.weights(netuid);
      const neurons = yield* port.neurons(netuid);
      const lastUpdate = new Map(neurons.map((n) => [n.uid, n.lastUpdate]));
      return rows.map((r): WeightsRow => ({ uid: r.uid, block: lastUpdate.get(r.uid) ?? 0, weights: r.weights }));
    });

    const chain: ChainShape = {
      identity,
      ...makeClock({ blocksPerWindow, head: port.head, heads: port.blocks, timestampOf: port.timestampOf }),
      metagraph,
      refreshMetagraph,
      uid: port.uidOf(netuid, hotkey),
      register: Effect.fail(new RegistrationRefused({ reason: "NeedsColdkey", hotkey })),
      commit: (commitment, format) =>
        Effect.gen(function* () {
          const text = yield* encodeCommitment(commitment, format);
          const fields = yield* commitmentFields(text);
          const config = yield* port.weightsConfig(netuid);
          yield* Effect.catchAll(port.submit({ _tag: "SetCommitment", netuid, fields }, identity.hotkey), (e) => classify(e, config, config.versionKey));
        }),
      commitments,
      setWeights,
      weights: weightsRows,
    };
    return { chain, revealDue };
  });

// ---- The port on a live @polkadot/api ----

const asBigInt = (value: unknown): bigint => {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(Math.trunc(value));
  if (typeof value === "string") return BigInt(value);
  return 0n;
};
const asNumber = (value: unknown): number => Number(asBigInt(value));
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** `NeuronInfoLite` as JSON (`getNeuronsLite`): stake is a list of (coldkey, amount) pairs. */
export const parseNeuronLite = (json: unknown): RawNeuron | undefined => {
  if (!isRecord(json)) return undefined;
  const stake = Array.isArray(json["stake"])
    ? json["stake"].reduce<bigint>((sum, pair) => sum + (Array.isArray(pair) ? asBigInt(pair[1]) : 0n), 0n)
    : asBigInt(json["stake"]);
  if (typeof json["hotkey"] !== "string" || typeof json["coldkey"] !== "string") return undefined;
  return {
    uid: asNumber(json["uid"]),
    hotkey: json["hotkey"],
    coldkey: json["coldkey"],
    stakeRao: stake,
    validatorPermit: json["validatorPermit"] === true,
    incentiveU16: asNumber(json["incentive"]),
    lastUpdate: asNumber(json["lastUpdate"]),
  };
};

/** The bytes of a commitment `Data` field (`{ raw128: "0x.." }`, `{ Raw12: .. }`, `{ bigRaw: .. }`). */
export const parseDataField = (json: unknown): Uint8Array | undefined => {
  if (!isRecord(json)) return undefined;
  for (const [key, value] of Object.entries(json)) {
    if (/^(raw\d*|bigraw)$/i.test(key) && typeof value === "string" && isHex(value)) return hexToU8a(value);
  }
  return undefined;
};

/** The storage and calls of subtensor, built through the connected runtime's metadata. */
export const makeSubtensorPort = (node: SubstrateNode): SubtensorPort => {
  const api: ApiPromise = node.api;
  const unavailable = (cause: unknown) => new ChainUnavailable({ endpoint: node.endpoint, reason: describeCause(cause) });
  const read = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: unavailable });
  const query = api.query;
  const q = (section: string, item: string) => query[section]?.[item];
  // @polkadot/api types its sections by name only when augmented for the chain; unaugmented, each
  // is looked up here, and a node whose runtime lacks one says which (read() turns the throw into
  // ChainUnavailable; a missing extrinsic throws from build(), as the property access did).
  const storage = (section: string, item: string) => {
    const entry = q(section, item);
    if (entry === undefined) throw new Error(`the chain's runtime has no storage ${section}.${item}`);
    return entry;
  };
  const extrinsic = (section: string, item: string) => {
    const create = api.tx[section]?.[item];
    if (create === undefined) throw new Error(`the chain's runtime has no extrinsic ${section}.${item}`);
    return create;
  };

  const neuronsFromStorage = (netuid: number) =>
    read(async () => {
      const keys = await storage("subtensorModule", "keys").entries(netuid);
      const [permits, incentives, lastUpdates] = await Promise.all([
        storage("subtensorModule", "validatorPermit")(netuid),
        storage("subtensorModule", "incentive")(netuid),
        storage("subtensorModule", "lastUpdate")(netuid),
      ]);
      const permitList: unknown = permits.toJSON();
      const incentiveList: unknown = incentives.toJSON();
      const updateList: unknown = lastUpdates.toJSON();
      const at = (list: unknown, i: number): unknown => (Array.isArray(list) ? list[i] : undefined);
      const stakeQuery = q("subtensorModule", "totalHotkeyAlpha");
      return Promise.all(
        keys.map(async ([key, value]) => {
          const uid = asNumber(key.args[1]?.toJSON());
          const hotkey = value.toString();
          const owner = await storage("subtensorModule", "owner")(hotkey);
          const stake = stakeQuery === undefined ? 0n : asBigInt((await storage("subtensorModule", "totalHotkeyAlpha")(hotkey, netuid)).toString());
          return {
            uid,
            hotkey,
            coldkey: owner.toString(),
            stakeRao: stake,
            validatorPermit: at(permitList, uid) === true,
            incentiveU16: asNumber(at(incentiveList, uid)),
            lastUpdate: asNumber(at(updateList, uid)),
          } satisfies RawNeuron;
        }),
      );
    });

  const neurons = (netuid: number): Effect.Effect<ReadonlyArray<RawNeuron>, ChainUnavailable> => {
    const getNeuronsLite = api.call["neuronInfoRuntimeApi"]?.["getNeuronsLite"];
    return getNeuronsLite !== undefined
      ? read(() => getNeuronsLite(netuid)).pipe(
          Effect.map((v) => {
            const list: unknown = v.toJSON();
            return (Array.isArray(list) ? list : []).flatMap((n) => parseNeuronLite(n) ?? []);
          }),
        )
      : neuronsFromStorage(netuid);
  };

  const build = (call: SubtensorCall) => {
    switch (call._tag) {
      case "SetWeights":
        return extrinsic("subtensorModule", "setWeights")(call.netuid, [...call.dests], [...call.weights], call.versionKey);
      case "CommitWeights":
        return extrinsic("subtensorModule", "commitWeights")(call.netuid, call.commitHash);
      case "RevealWeights":
        return extrinsic("subtensorModule", "revealWeights")(call.netuid, [...call.uids], [...call.values], [...call.salt], call.versionKey);
      case "SetCommitment":
        return extrinsic("commitments", "setCommitment")(call.netuid, { fields: call.fields.map((f) => ({ [`Raw${f.length}`]: f })) });
    }
  };

  return {
    endpoint: node.endpoint,
    registry: api.registry,
    head: node.head,
    blocks: node.blocks,
    timestampOf: node.timestampOf,
    neurons,
    commitments: (netuid) =>
      read(() => storage("commitments", "commitmentOf").entries(netuid)).pipe(
        Effect.map((entries) =>
          entries.flatMap(([key, value]) => {
            const json: unknown = value.toJSON();
            if (!isRecord(json) || !isRecord(json["info"])) return [];
            const fields = json["info"]["fields"];
            return [
              {
                hotkey: key.args[1]?.toString() ?? "",
                block: asNumber(json["block"]),
                fields: (Array.isArray(fields) ? fields : []).flatMap((f) => parseDataField(f) ?? []),
              },
            ];
          }),
        ),
      ),
    weights: (netuid) =>
      read(() => storage("subtensorModule", "weights").entries(netuid)).pipe(
        Effect.map((entries) =>
          entries.map(([key, value]) => {
            const list: unknown = value.toJSON();
            return {
              uid: asNumber(key.args[1]?.toJSON()),
              weights: (Array.isArray(list) ? list : []).flatMap((p): Array<readonly [number, number]> => (Array.isArray(p) ? [[asNumber(p[0]), asNumber(p[1])]] : [])),
            };
          }),
        ),
      ),
    uidOf: (netuid, hotkey) =>
      read(() => storage("subtensorModule", "uids")(netuid, hotkey)).pipe(
        Effect.map((v) => {
          const json: unknown = v.toJSON();
          return json === null || json === undefined ? undefined : asNumber(json);
        }),
      ),
    subnetSize: (netuid) =>
      read(async () => {
        // `networksAdded` is the registry of subnets; a runtime without it has a subnet wherever uids exist.
        const added = q("subtensorModule", "networksAdded") === undefined ? undefined : (await storage("subtensorModule", "networksAdded")(netuid)).toJSON();
        const n = asNumber((await storage("subtensorModule", "subnetworkN")(netuid)).toJSON());
        return added === false || (added === undefined && n === 0) ? undefined : n;
      }),
    weightsConfig: (netuid) =>
      read(async () => {
        const [enabled, versionKey, rateLimit, tempo] = await Promise.all([
          storage("subtensorModule", "commitRevealWeightsEnabled")(netuid),
          storage("subtensorModule", "weightsVersionKey")(netuid),
          storage("subtensorModule", "weightsSetRateLimit")(netuid),
          storage("subtensorModule", "tempo")(netuid),
        ]);
        const versionQuery = q("subtensorModule", "commitRevealWeightsVersion");
        const version = versionQuery === undefined ? undefined : asNumber((await storage("subtensorModule", "commitRevealWeightsVersion")()).toJSON());
        return {
          commitRevealEnabled: enabled.toJSON() === true,
          commitRevealVersion: version,
          versionKey: asNumber(versionKey.toJSON()),
          rateLimit: asNumber(rateLimit.toJSON()),
          tempo: asNumber(tempo.toJSON()),
        };
      }),
    submit: (call, signer) => Effect.asVoid(node.submit(build(call), signer)),
  };
};

export interface LayerSubtensorOptions extends SubtensorOptions {
  /** e.g. `wss://entrypoint-finney.opentensor.ai:443`, `wss://test.finney.opentensor.ai:443`, `ws://127.0.0.1:9944`. */
  readonly endpoint: string;
  readonly connectTimeoutMs?: number;
  /** How long a call waits for inclusion before `ChainTimeout` (default: 10 of the runtime's blocks, >= 10 s). */
  readonly submitTimeoutMs?: number;
}

/** Bittensor's subtensor as the `Chain`: connects, checks the runtime, follows blocks, reveals commits when due. */
export const layerSubtensor = (options: LayerSubtensorOptions): Layer.Layer<Chain, ChainUnavailable | RuntimeMismatch | SubnetNotFound> =>
  Layer.scoped(
    Chain,
    Effect.gen(function* () {
      const node = yield* connectSubstrate(options.endpoint, {
        required: subtensorRequirements,
        ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
        ...(options.submitTimeoutMs === undefined ? {} : { submitTimeoutMs: options.submitTimeoutMs }),
      });
      const { chain, revealDue } = yield* makeSubtensorChain(makeSubtensorPort(node), options);
      yield* forkRevealLoop(chain, revealDue);
      return chain;
    }),
  );

/** Follows blocks and reveals pending weight commits when their epoch comes; failures are logged, not fatal. */
export const forkRevealLoop = (chain: ChainShape, revealDue: (block: number) => Effect.Effect<void, ChainError>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(
    Effect.forkScoped(
      Stream.runForEach(chain.blocks, (b) => Effect.catchAll(revealDue(b.number), (e) => Effect.logWarning(`weights reveal failed: ${e._tag}`))).pipe(
        Effect.retry(Schedule.spaced(Duration.seconds(1))),
      ),
    ),
  );
