import type { KeyringPair } from "@polkadot/keyring/types";
import { stringToU8a, u8aToHex } from "@polkadot/util";
import { signatureVerify } from "@polkadot/util-crypto";
import { Schema } from "effect";
import { maxCommitmentBytes } from "../Commitment.ts";

const U16 = Schema.Int.pipe(Schema.between(0, 65535));
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative());

/** What a local-chain extrinsic asks for; the signer is the hotkey acting. */
export const LocalCall = Schema.Union(
  Schema.TaggedStruct("Register", { coldkey: Schema.String }),
  Schema.TaggedStruct("AddStake", { amount: Schema.Number.pipe(Schema.positive(), Schema.finite()) }),
  Schema.TaggedStruct("SetCommitment", { data: Schema.String.pipe(Schema.maxLength(maxCommitmentBytes)) }),
  Schema.TaggedStruct("SetWeights", {
    uids: Schema.Array(U16),
    values: Schema.Array(U16),
    versionKey: NonNegativeInt,
  }),
);
export type LocalCall = typeof LocalCall.Type;

/** An extrinsic-like message: the signer's sr25519 signature over (genesis hash, nonce, call). */
export const SignedCall = Schema.Struct({
  signer: Schema.String,
  nonce: NonNegativeInt,
  call: LocalCall,
  signature: Schema.String,
});
export type SignedCall = typeof SignedCall.Type;

/** JSON with sorted keys, so a payload signs to the same bytes whoever built the object. */
export const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
};

/** The bytes a call's signature covers; the genesis hash stops replays onto another chain. */
export const signingPayload = (genesisHash: string, nonce: number, call: LocalCall): Uint8Array =>
  stringToU8a(canonicalJson(["covenant-local-chain/v1", genesisHash, nonce, call]));

export const signCall = (pair: KeyringPair, genesisHash: string, nonce: number, call: LocalCall): SignedCall => ({
  signer: pair.address,
  nonce,
  call,
  signature: u8aToHex(pair.sign(signingPayload(genesisHash, nonce, call))),
});

/** True when the signature is the signer's over this chain's payload (needs `cryptoWaitReady`). */
export const verifyCall = (genesisHash: string, signed: SignedCall): boolean => {
  try {
    return signatureVerify(signingPayload(genesisHash, signed.nonce, signed.call), signed.signature, signed.signer).isValid;
  } catch {
    // Malformed addresses or signature hex throw inside util-crypto; they are simply invalid.
    return false;
  }
};
