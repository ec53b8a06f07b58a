import { describe, expect, test } from "bun:test";
import { TypeRegistry } from "@polkadot/types";
import { blake2AsU8a } from "@polkadot/util-crypto";
import { Effect, Either, Stream } from "effect";
import {
  ChainTimeout,
  ChainUnavailable,
  commitRevealHash,
  describeCause,
  describeChainError,
  DispatchFailed,
  FilesystemCommitment,
  identityFromSecret,
  makeSubtensorChain,
  parseNeuronLite,
  S3Commitment,
} from "../src/index.ts";
import type { RawNeuron, SubnetWeightsConfig, SubtensorCall, SubtensorPort } from "../src/index.ts";

// Everything here runs against an injected, in-memory stand-in for subtensor ("mock"): no
// subtensor node runs on this machine. The calls themselves are built from the live runtime's
// metadata by makeSubtensorPort; these tests cover the typed layer around them.

const alice = await Effect.runPromise(identityFromSecret("//Alice"));
const netuid = 3;

/** SCALE by hand, independently of @polkadot/types: compact length prefix (< 64 items) and little-endian ints. */
const le = (value: bigint, bytes: number) => Array.from({ length: bytes }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
const vecU16 = (xs: ReadonlyArray<number>) => {
  if (xs.length >= 64) throw new Error("hand encoder handles short vectors only");
  return [xs.length << 2, ...xs.flatMap((x) => le(BigInt(x), 2))];
};
const handHash = (hotkey: Uint8Array, uids: number[], values: number[], salt: number[], versionKey: number) =>
  blake2AsU8a(Uint8Array.from([...hotkey, ...le(BigInt(netuid), 2), ...vecU16(uids), ...vecU16(values), ...vecU16(salt), ...le(BigInt(versionKey), 8)]), 256);

interface MockState {
  config: SubnetWeightsConfig;
  /** `subnetworkN`; undefined: no such subnet. */
  subnetSize: number | undefined;
  head: number;
  calls: SubtensorCall[];
  failNext: Array<DispatchFailed | undefined>;
  neurons: RawNeuron[];
  commitments: Map<string, ReadonlyArray<Uint8Array>>;
}

const mockPort = (state: MockState): SubtensorPort => ({
  endpoint: "mock://subtensor",
  registry: new TypeRegistry(),
  head: Effect.sync(() => ({ number: state.head, timestampMs: state.head * 12_000 })),
  blocks: Stream.empty,
  timestampOf: (block) => Effect.succeed(block * 12_000),
  neurons: () => Effect.sync(() => state.neurons),
  commitments: () => Effect.sync(() => [...state.commitments].map(([hotkey, fields]) => ({ hotkey, block: state.head, fields }))),
  weights: () => Effect.succeed([]),
  uidOf: (_, hotkey) => Effect.sync(() => state.neurons.find((n) => n.hotkey === hotkey)?.uid),
  weightsConfig: () => Effect.sync(() => state.config),
  subnetSize: () => Effect.sync(() => state.subnetSize),
  submit: (call, signer) =>
    Effect.suspend((): Effect.Effect<void, ChainUnavailable | DispatchFailed> => {
      if (signer.address !== alice.hotkey.address) return Effect.fail(new ChainUnavailable({ endpoint: "mock", reason: "wrong signer" }));
      const failure = state.failNext.shift();
      if (failure !== undefined) return Effect.fail(failure);
      state.calls.push(call);
      if (call._tag === "SetCommitment") state.commitments.set(signer.address, call.fields);
      return Effect.void;
    }),
});

const freshState = (config: Partial<SubnetWeightsConfig> = {}): MockState => ({
  config: { commitRevealEnabled: false, commitRevealVersion: undefined, versionKey: 7, rateLimit: 100, tempo: 10, ...config },
  subnetSize: 2,
  head: 1000,
  calls: [],
  failNext: [],
  neurons: [
    { uid: 0, hotkey: alice.hotkey.address, coldkey: alice.coldkey, stakeRao: 2_500_000_000n, validatorPermit: true, incentiveU16: 0, lastUpdate: 990 },
    { uid: 1, hotkey: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", coldkey: alice.coldkey, stakeRao: 0n, validatorPermit: false, incentiveU16: 65535, lastUpdate: 900 },
  ],
  commitments: new Map(),
});

const build = (state: MockState) => Effect.runPromise(makeSubtensorChain(mockPort(state), { netuid, identity: alice, blocksPerWindow: 115, revealRetryBlocks: 2 }));
const dispatch = (error: string) => new DispatchFailed({ pallet: "subtensorModule", error, docs: "" });

describe("subtensor typed layer (mock port)", () => {
  test("mock: the commit-reveal hash is blake2_256 of the SCALE tuple, built through a type registry", () => {
    const args = { uids: [0, 5, 63], values: [65535, 100, 1], salt: [1, 2, 3, 4, 5, 6, 7, 65535], versionKey: 2 ** 40 + 3 };
    const viaRegistry = commitRevealHash(new TypeRegistry(), { hotkey: alice.hotkey.publicKey, netuid, ...args });
    expect(Buffer.from(viaRegistry).toString("hex")).toBe(Buffer.from(handHash(alice.hotkey.publicKey, args.uids, args.values, args.salt, args.versionKey)).toString("hex"));
  });

  test("mock: setWeights sends u16 weights max-normalised, with the subnet's version key", async () => {
    const state = freshState();
    const { chain } = await build(state);
    await Effect.runPromise(chain.setWeights([{ uid: 0, weight: 0.5 }, { uid: 1, weight: 1 }, { uid: 2, weight: 0 }]));
    expect(state.calls).toEqual([{ _tag: "SetWeights", netuid, dests: [0, 1], weights: [Math.round(0.5 * 65535), 65535], versionKey: 7 }]);
    const bad = await Effect.runPromise(Effect.either(chain.setWeights([{ uid: 0, weight: -1 }])));
    expect(Either.isLeft(bad) && bad.left._tag).toBe("InvalidWeights");
  });

  test("mock: dispatch errors become typed errors", async () => {
    const cases: Array<[string, string]> = [
      ["SettingWeightsTooFast", "WeightsRateLimited"],
      ["NeuronNoValidatorPermit", "NoValidatorPermit"],
      ["HotKeyNotRegisteredInSubNet", "NotRegistered"],
      ["IncorrectWeightVersionKey", "WeightVersionKeyTooLow"],
      ["CommitRevealEnabled", "UnsupportedWeightsPath"],
      ["CommitRevealV3Enabled", "UnsupportedWeightsPath"],
      // What a real subtensor (spec 300) answered to a uid that does not exist, and to an empty vector.
      ["UidVecContainInvalidOne", "InvalidWeights"],
      ["WeightVecLengthIsLow", "InvalidWeights"],
      ["DuplicateUids", "InvalidWeights"],
      ["SubNetworkDoesNotExist", "SubnetNotFound"],
      ["SomethingNew", "DispatchFailed"],
    ];
    for (const [runtimeError, tag] of cases) {
      const state = freshState();
      state.failNext.push(dispatch(runtimeError));
      const { chain } = await build(state);
      const result = await Effect.runPromise(Effect.either(chain.setWeights([{ uid: 1, weight: 1 }])));
      expect([runtimeError, Either.isLeft(result) ? result.left._tag : "ok"]).toEqual([runtimeError, tag]);
      if (Either.isLeft(result) && result.left._tag === "WeightsRateLimited") {
        expect(result.left.currentBlock).toBe(1000);
        expect(result.left.rateLimitBlocks).toBe(100);
      }
    }
    const state = freshState();
    state.failNext.push(new DispatchFailed({ pallet: "commitments", error: "AccountNotAllowedCommit", docs: "" }));
    state.failNext.push(new DispatchFailed({ pallet: "commitments", error: "SpaceLimitExceeded", docs: "" }));
    const { chain } = await build(state);
    const location = FilesystemCommitment.make({ dir: "/shared/run" });
    const first = await Effect.runPromise(Effect.either(chain.commit(location)));
    const second = await Effect.runPromise(Effect.either(chain.commit(location)));
    expect([first, second].map((r) => (Either.isLeft(r) ? r.left._tag : "ok"))).toEqual(["NotRegistered", "CommitmentTooLarge"]);
  });

  test("mock: with commit-reveal the hash is committed, then revealed once an epoch has passed, retrying too-early reveals", async () => {
    const state = freshState({ commitRevealEnabled: true, tempo: 10 });
    const { chain, revealDue } = await build(state);
    await Effect.runPromise(chain.setWeights([{ uid: 1, weight: 3 }, { uid: 0, weight: 1 }]));
    const commit = state.calls[0];
    expect(commit?._tag).toBe("CommitWeights");
    await Effect.runPromise(revealDue(1005));
    expect(state.calls.length).toBe(1);
    state.failNext.push(dispatch("RevealTooEarly"));
    await Effect.runPromise(revealDue(1010));
    await Effect.runPromise(revealDue(1011));
    expect(state.calls.length).toBe(1);
    await Effect.runPromise(revealDue(1012));
    const reveal = state.calls[1];
    expect(reveal?._tag).toBe("RevealWeights");
    if (reveal?._tag !== "RevealWeights" || commit?._tag !== "CommitWeights") throw new Error("unexpected calls");
    expect([reveal.uids, reveal.values, reveal.versionKey]).toEqual([[1, 0], [65535, Math.round(65535 / 3)], 7]);
    expect(reveal.salt.length).toBe(8);
    // The revealed values hash to exactly what was committed.
    expect(Buffer.from(commit.commitHash).toString("hex")).toBe(
      Buffer.from(handHash(alice.hotkey.publicKey, [...reveal.uids], [...reveal.values], [...reveal.salt], reveal.versionKey)).toString("hex"),
    );
    await Effect.runPromise(revealDue(1100));
    expect(state.calls.length).toBe(2);
  });

  test("mock: drand-timelocked commit-reveal is refused with a typed error naming the path", async () => {
    const state = freshState({ commitRevealEnabled: true, commitRevealVersion: 4 });
    const { chain } = await build(state);
    const result = await Effect.runPromise(Effect.either(chain.setWeights([{ uid: 1, weight: 1 }])));
    expect(Either.isLeft(result) && result.left._tag).toBe("UnsupportedWeightsPath");
    expect(Either.isLeft(result) && result.left._tag === "UnsupportedWeightsPath" && result.left.reason).toContain("commitTimelockedWeights");
    expect(state.calls).toEqual([]);
  });

  test("mock: a legacy commitment is one Raw128 field; a compact one up to three fields; both read back", async () => {
    const state = freshState();
    const { chain } = await build(state);
    const account = "0123456789abcdef0123456789abcdef";
    const r2 = S3Commitment.make({ endpoint: `https://${account}.r2.cloudflarestorage.com`, bucket: account, region: "auto", accessKeyId: "A".repeat(32), secretAccessKey: "b".repeat(64) });
    await Effect.runPromise(chain.commit(r2, "legacy"));
    const legacy = state.calls[0];
    expect(legacy?._tag === "SetCommitment" && legacy.fields.map((f) => f.length)).toEqual([128]);
    const s3 = S3Commitment.make({ endpoint: "http://127.0.0.1:4569", bucket: "covenant-miner-7", region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
    await Effect.runPromise(chain.commit(s3));
    const compact = state.calls[1];
    const sizes = compact?._tag === "SetCommitment" ? compact.fields.map((f) => f.length) : [];
    expect(sizes.length).toBeGreaterThanOrEqual(2);
    expect(sizes.length).toBeLessThanOrEqual(3);
    expect(sizes.slice(0, -1).every((n) => n === 128)).toBe(true);
    const records = await Effect.runPromise(chain.commitments);
    expect(records.map((r) => [r.uid, Either.isRight(r.commitment) ? r.commitment.right : r.commitment.left._tag])).toEqual([[0, s3]]);
  });

  test("mock: the metagraph converts rao stake and u16 incentive, and getNeuronsLite JSON parses", async () => {
    const state = freshState();
    const { chain } = await build(state);
    const metagraph = await Effect.runPromise(chain.metagraph);
    expect(metagraph.block).toBe(1000);
    expect(metagraph.neurons.map((n) => [n.uid, n.stake, n.incentive, n.validatorPermit])).toEqual([[0, 2.5, 0, true], [1, 0, 1, false]]);
    const parsed = parseNeuronLite({
      hotkey: alice.hotkey.address,
      coldkey: alice.coldkey,
      uid: 4,
      stake: [[alice.coldkey, 1_000_000_000], [alice.coldkey, "0x77359400"]],
      incentive: 32768,
      lastUpdate: 12345,
      validatorPermit: true,
    });
    expect(parsed).toEqual({ uid: 4, hotkey: alice.hotkey.address, coldkey: alice.coldkey, stakeRao: 3_000_000_000n, validatorPermit: true, incentiveU16: 32768, lastUpdate: 12345 });
    expect(parseNeuronLite({ uid: 1 })).toBeUndefined();
    const registration = await Effect.runPromise(Effect.either(chain.register));
    expect(Either.isLeft(registration) && registration.left._tag === "RegistrationRefused" && registration.left.reason).toBe("NeedsColdkey");
  });

  test("mock: weights for a uid the subnet does not have are InvalidWeights, and nothing is sent", async () => {
    const state = freshState();
    const { chain } = await build(state);
    const result = await Effect.runPromise(Effect.either(chain.setWeights([{ uid: 1, weight: 1 }, { uid: 9, weight: 0.5 }])));
    expect(Either.isLeft(result) && result.left._tag).toBe("InvalidWeights");
    expect(Either.isLeft(result) && result.left._tag === "InvalidWeights" && result.left.reason).toContain("uid 9 does not exist on subnet 3");
    expect(state.calls).toEqual([]);
    // A uid that existed when the check ran but not when the call dispatched: the runtime's error is typed the same.
    state.failNext.push(dispatch("UidVecContainInvalidOne"));
    const raced = await Effect.runPromise(Effect.either(chain.setWeights([{ uid: 1, weight: 1 }])));
    expect(Either.isLeft(raced) && raced.left._tag).toBe("InvalidWeights");
  });

  test("mock: all-zero weights are refused as InvalidWeights before sending, never sent as an empty vector", async () => {
    for (const config of [{}, { commitRevealEnabled: true }]) {
      const state = freshState(config);
      const { chain } = await build(state);
      for (const weights of [[{ uid: 0, weight: 0 }, { uid: 1, weight: 0 }], []]) {
        const result = await Effect.runPromise(Effect.either(chain.setWeights(weights)));
        expect(Either.isLeft(result) && result.left._tag).toBe("InvalidWeights");
        expect(Either.isLeft(result) && result.left._tag === "InvalidWeights" && result.left.reason).toContain("zero");
      }
      expect(state.calls).toEqual([]);
      // Weights that are not all zero still go out, zeros dropped.
      await Effect.runPromise(chain.setWeights([{ uid: 0, weight: 0 }, { uid: 1, weight: 2 }]));
      expect(state.calls.length).toBe(1);
    }
  });

  test("mock: a netuid with no subnet fails the chain at construction with SubnetNotFound", async () => {
    const state = { ...freshState(), subnetSize: undefined };
    const result = await Effect.runPromise(Effect.either(makeSubtensorChain(mockPort(state), { netuid: 77, identity: alice, blocksPerWindow: 115 })));
    expect(Either.isLeft(result) && result.left._tag).toBe("SubnetNotFound");
    expect(Either.isLeft(result) && describeChainError(result.left)).toBe("SubnetNotFound: subnet 77 does not exist on mock://subtensor");
  });

  test("mock: a submit that times out stays a typed ChainTimeout through setWeights and commit", async () => {
    const state = freshState();
    const timeout = new ChainTimeout({ endpoint: "mock://subtensor", operation: "submit subtensorModule.setWeights", afterMs: 120_000 });
    const port = mockPort(state);
    const { chain } = await Effect.runPromise(makeSubtensorChain({ ...port, submit: () => Effect.fail(timeout) }, { netuid, identity: alice, blocksPerWindow: 115 }));
    const weights = await Effect.runPromise(Effect.either(chain.setWeights([{ uid: 1, weight: 1 }])));
    const commit = await Effect.runPromise(Effect.either(chain.commit(FilesystemCommitment.make({ dir: "/shared/run" }))));
    expect([weights, commit].map((r) => (Either.isLeft(r) ? r.left._tag : "ok"))).toEqual(["ChainTimeout", "ChainTimeout"]);
  });

  test("mock: a reveal that gets no answer (ChainTimeout) is kept and retried, not dropped", async () => {
    const state = freshState({ commitRevealEnabled: true, tempo: 10 });
    const timeouts = [new ChainTimeout({ endpoint: "mock://subtensor", operation: "submit subtensorModule.revealWeights", afterMs: 120_000 })];
    const port = mockPort(state);
    const { chain, revealDue } = await Effect.runPromise(
      makeSubtensorChain({ ...port, submit: (call, signer) => (call._tag === "RevealWeights" && timeouts.length > 0 ? Effect.fail(timeouts.shift()!) : port.submit(call, signer)) }, { netuid, identity: alice, blocksPerWindow: 115, revealRetryBlocks: 2 }),
    );
    await Effect.runPromise(chain.setWeights([{ uid: 1, weight: 1 }]));
    const first = await Effect.runPromise(Effect.either(revealDue(1010)));
    expect(Either.isLeft(first) && first.left._tag).toBe("ChainTimeout");
    await Effect.runPromise(revealDue(1011));
    expect(state.calls.map((c) => c._tag)).toEqual(["CommitWeights"]);
    await Effect.runPromise(revealDue(1012));
    expect(state.calls.map((c) => c._tag)).toEqual(["CommitWeights", "RevealWeights"]);
  });

  test("connection failures read as a sentence, not [object ErrorEvent]", () => {
    // The shape Bun's WebSocket hands @polkadot/api when nothing listens (an ErrorEvent with a message).
    const event = Object.assign(Object.create({ [Symbol.toStringTag]: "ErrorEvent" }) as object, { type: "error", message: "WebSocket connection to 'ws://127.0.0.1:1/' failed: Failed to connect" });
    expect(String(event)).toBe("[object ErrorEvent]");
    expect(describeCause(event)).toBe("WebSocket connection to 'ws://127.0.0.1:1/' failed: Failed to connect");
    expect(describeCause({ type: "close", code: 1006 })).toBe("close event (code 1006)");
    expect(describeCause(new Error("boom"))).toBe("boom");
    expect(describeChainError(new ChainUnavailable({ endpoint: "ws://x", reason: "cannot connect" }))).toBe("ChainUnavailable: endpoint ws://x, reason cannot connect");
  });
});
