import type { Registry } from "@polkadot/types/types";
import { blake2AsU8a } from "@polkadot/util-crypto";
import { Either } from "effect";
import {
  CommitmentTooLarge,
  InvalidWeights,
  SubnetNotFound,
  NoValidatorPermit,
  NotRegistered,
  UnsupportedWeightsPath,
  WeightsRateLimited,
  WeightVersionKeyTooLow,
} from "../errors.ts";
import type { ChainError, DispatchFailed } from "../errors.ts";
import type { RuntimeItem } from "./node.ts";

/** What the subtensor client uses; checked against the runtime at connect time. */
export const subtensorRequirements: ReadonlyArray<RuntimeItem> = [
  "tx.subtensorModule.setWeights",
  "tx.subtensorModule.commitWeights",
  "tx.subtensorModule.revealWeights",
  "query.subtensorModule.uids",
  "query.subtensorModule.keys",
  "query.subtensorModule.subnetworkN",
  "query.subtensorModule.weights",
  "query.subtensorModule.tempo",
  "query.subtensorModule.weightsVersionKey",
  "query.subtensorModule.weightsSetRateLimit",
  "query.subtensorModule.commitRevealWeightsEnabled",
  "tx.commitments.setCommitment",
  "query.commitments.commitmentOf",
];

/** The subtensor extrinsics this package sends, before they are built through the chain's metadata. */
export type SubtensorCall =
  | { readonly _tag: "SetWeights"; readonly netuid: number; readonly dests: ReadonlyArray<number>; readonly weights: ReadonlyArray<number>; readonly versionKey: number }
  | { readonly _tag: "CommitWeights"; readonly netuid: number; readonly commitHash: Uint8Array }
  | {
      readonly _tag: "RevealWeights";
      readonly netuid: number;
      readonly uids: ReadonlyArray<number>;
      readonly values: ReadonlyArray<number>;
      readonly salt: ReadonlyArray<number>;
      readonly versionKey: number;
    }
  | { readonly _tag: "SetCommitment"; readonly netuid: number; readonly fields: ReadonlyArray<Uint8Array> };

/** Bytes per `RawN` field, and fields per commitment, that the Commitments pallet accepts. */
export const rawFieldBytes = 128;
export const maxCommitmentFields = 3;

/** A commitment string as `Raw` fields: one field when it fits (the reference's single `Raw128`). */
export const commitmentFields = (text: string): Either.Either<ReadonlyArray<Uint8Array>, CommitmentTooLarge> => {
  const bytes = new TextEncoder().encode(text);
  const fields: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += rawFieldBytes) fields.push(bytes.subarray(i, i + rawFieldBytes));
  return fields.length > maxCommitmentFields
    ? Either.left(new CommitmentTooLarge({ reason: `${bytes.length} bytes need ${fields.length} Raw128 fields; at most ${maxCommitmentFields} are allowed` }))
    : Either.right(fields);
};

/** The committed string back from its fields. */
export const commitmentText = (fields: ReadonlyArray<Uint8Array>): string =>
  new TextDecoder().decode(Uint8Array.from(fields.flatMap((f) => [...f])));

/**
 * Commit-reveal v2's hash: blake2_256 of the SCALE encoding of
 * (AccountId32 hotkey, u16 netuid, Vec<u16> uids, Vec<u16> values, Vec<u16> salt, u64 versionKey),
 * encoded by the connected chain's own type registry.
 */
export const commitRevealHash = (
  registry: Registry,
  args: {
    readonly hotkey: Uint8Array;
    readonly netuid: number;
    readonly uids: ReadonlyArray<number>;
    readonly values: ReadonlyArray<number>;
    readonly salt: ReadonlyArray<number>;
    readonly versionKey: number;
  },
): Uint8Array =>
  blake2AsU8a(
    registry
      .createType("(AccountId32, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64)", [args.hotkey, args.netuid, args.uids, args.values, args.salt, args.versionKey])
      .toU8a(),
    256,
  );

/** What a dispatch error means to a participant; unknown ones stay `DispatchFailed`. */
export const classifyDispatchError = (
  error: DispatchFailed,
  context: { readonly endpoint?: string; readonly hotkey: string; readonly netuid: number; readonly versionKey: number; readonly requiredVersionKey: number; readonly rateLimit: number; readonly lastSetBlock: number; readonly currentBlock: number },
): ChainError => {
  switch (error.error) {
    case "SettingWeightsTooFast":
      return new WeightsRateLimited({ lastSetBlock: context.lastSetBlock, rateLimitBlocks: context.rateLimit, currentBlock: context.currentBlock });
    case "NeuronNoValidatorPermit":
      return new NoValidatorPermit({ hotkey: context.hotkey });
    case "HotKeyNotRegisteredInSubNet":
    case "HotKeyNotRegisteredInNetwork":
    case "HotKeyAccountNotExists":
    case "AccountNotAllowedCommit":
      return new NotRegistered({ hotkey: context.hotkey });
    case "SpaceLimitExceeded":
    case "TooManyFieldsInCommitmentInfo":
      return new CommitmentTooLarge({ reason: `${error.pallet}.${error.error}` });
    case "IncorrectWeightVersionKey":
      return new WeightVersionKeyTooLow({ given: context.versionKey, required: context.requiredVersionKey });
    // The weight vector itself (subtensor's checks in do_set_weights / do_reveal_weights).
    case "UidVecContainInvalidOne":
    case "InvalidUid":
      return new InvalidWeights({ reason: `${error.pallet}.${error.error}: a uid in the vector does not exist on subnet ${context.netuid}` });
    case "WeightVecLengthIsLow":
      return new InvalidWeights({ reason: `${error.pallet}.${error.error}: fewer weights than the subnet's minAllowedWeights (an all-zero vector is empty)` });
    case "WeightVecNotEqualSize":
    case "DuplicateUids":
    case "MaxWeightExceeded":
    case "TooManyUids":
    case "UidsLengthExceedUidsInSubNet":
      return new InvalidWeights({ reason: `${error.pallet}.${error.error}${error.docs === "" ? "" : `: ${error.docs}`}` });
    case "SubNetworkDoesNotExist":
    case "SubnetNotExists":
      return new SubnetNotFound({ endpoint: context.endpoint ?? "", netuid: context.netuid });
    case "CommitRevealEnabled":
      return new UnsupportedWeightsPath({ netuid: context.netuid, reason: "direct weights refused: the subnet switched to commit-reveal" });
    default:
      // Errors of the drand-timelocked path (CRv3 and later) tell that the hash commit does not apply.
      return /timelock|crv3|v3/i.test(error.error)
        ? new UnsupportedWeightsPath({ netuid: context.netuid, reason: `${error.pallet}.${error.error}: the subnet needs drand-timelocked commits` })
        : error;
  }
};
