import { Effect, Either, ParseResult, Schema } from "effect";
import { CommitmentFormatError } from "./errors.ts";

/**
 * What a node runs, as it declares it: a validator permit is no role (on subtensor any neuron with
 * enough stake holds one, miners included), so who is listed as a peer and who may lead is read
 * from this declaration.
 */
export const Role = Schema.Literal("peer", "validator");
export type Role = typeof Role.Type;

// A commitment that declares no role (made without one, or an older one) is a peer's.
const declaredRole = Schema.optionalWith(Role, { default: () => "peer" as const });

/** An S3-compatible bucket (AWS S3, Cloudflare R2, s3rver) and the read credentials peers use. */
export const S3Commitment = Schema.TaggedStruct("S3", {
  endpoint: Schema.String,
  bucket: Schema.String,
  region: Schema.String,
  accessKeyId: Schema.String,
  secretAccessKey: Schema.String,
  role: declaredRole,
});
export type S3Commitment = typeof S3Commitment.Type;

/** A directory on a filesystem all participants share (the filesystem transport). */
export const FilesystemCommitment = Schema.TaggedStruct("Filesystem", { dir: Schema.String, role: declaredRole });
export type FilesystemCommitment = typeof FilesystemCommitment.Type;

/** Where a participant's uploads live and the role it runs; what a hotkey commits on chain. */
export const Commitment = Schema.Union(S3Commitment, FilesystemCommitment);
export type Commitment = typeof Commitment.Type;

/** A commitment's location alone: what a node is configured with; it commits it with the role it runs. */
export type CommitmentLocation = Omit<S3Commitment, "role"> | Omit<FilesystemCommitment, "role">;

/** Three `Raw128` fields is the most a commitment may carry on subtensor, so no encoding may exceed it. */
export const maxCommitmentBytes = 384;

const compactPrefix = "ct1:";

// The compact wire form: short keys, so a whole S3 location usually fits in two Raw128 fields.
// `o` is the role ("p" peer, "v" validator); compact commitments made before roles lack it: peers.
const wireRole = { o: Schema.optional(Schema.Literal("p", "v")) };
const CompactWire = Schema.Union(
  Schema.Struct({
    v: Schema.Literal(1),
    t: Schema.Literal("s3"),
    e: Schema.String,
    b: Schema.String,
    r: Schema.String,
    a: Schema.String,
    s: Schema.String,
    ...wireRole,
  }),
  Schema.Struct({ v: Schema.Literal(1), t: Schema.Literal("fs"), d: Schema.String, ...wireRole }),
);
const decodeCompactWire = Schema.decodeUnknownEither(Schema.parseJson(CompactWire));

// The reference network's format: R2 account id (32) + access key id (32) + secret (64).
const legacyPattern = /^([0-9A-Za-z]{32})([0-9A-Za-z]{32})([0-9A-Za-z]{64})$/;
const r2Endpoint = (accountId: string) => `https://${accountId}.r2.cloudflarestorage.com`;

// Web APIs only (btoa/atob, TextEncoder), no Node Buffer: a browser tab decodes commitments too.
// Lenient like Buffer's base64url: characters outside the alphabet are skipped, padding optional.
const base64url = {
  encode: (text: string): string => {
    let binary = "";
    for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode: (text: string): string => {
    const clean = text.replace(/-/g, "+").replace(/_/g, "/").replace(/[^A-Za-z0-9+/]/g, "");
    const usable = clean.length % 4 === 1 ? clean.slice(0, -1) : clean;
    const binary = atob(usable + "=".repeat((4 - (usable.length % 4)) % 4));
    return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  },
};
const byteLength = (text: string): number => new TextEncoder().encode(text).length;

const roleOfWire = (o: "p" | "v" | undefined): Role => (o === "v" ? "validator" : "peer");

const fail = (reason: string) => Effect.fail(new CommitmentFormatError({ reason }));

/**
 * Encodes a commitment. `compact` (default) handles every location and role; `legacy` is the
 * reference's 128-character R2 string: it only fits an R2 bucket named after its account id, and
 * carries no role, so only a peer's (the reference's miners commit it).
 */
export const encodeCommitment = (
  commitment: Commitment,
  format: "compact" | "legacy" = "compact",
): Effect.Effect<string, CommitmentFormatError> => {
  if (format === "legacy") {
    if (commitment._tag !== "S3") return fail("the legacy format only carries R2 (S3) locations");
    if (commitment.role !== "peer") return fail("the legacy format carries no role and reads as a peer's: a validator commits the compact format");
    const text = commitment.bucket + commitment.accessKeyId + commitment.secretAccessKey;
    if (!legacyPattern.test(text) || commitment.endpoint !== r2Endpoint(commitment.bucket)) {
      return fail("the legacy format needs an R2 bucket named after its 32-character account id, a 32-character key id and a 64-character secret");
    }
    return Effect.succeed(text);
  }
  const o = commitment.role === "validator" ? "v" : "p";
  const wire =
    commitment._tag === "S3"
      ? { v: 1, t: "s3", e: commitment.endpoint, b: commitment.bucket, r: commitment.region, a: commitment.accessKeyId, s: commitment.secretAccessKey, o }
      : { v: 1, t: "fs", d: commitment.dir, o };
  const text = compactPrefix + base64url.encode(JSON.stringify(wire));
  return byteLength(text) > maxCommitmentBytes
    ? fail(`encoded commitment is ${byteLength(text)} bytes; at most ${maxCommitmentBytes} fit on chain`)
    : Effect.succeed(text);
};

/** Decodes either format; anything else is a `CommitmentFormatError`. */
export const decodeCommitment = (text: string): Effect.Effect<Commitment, CommitmentFormatError> => {
  if (text.startsWith(compactPrefix)) {
    const wire = decodeCompactWire(base64url.decode(text.slice(compactPrefix.length)));
    if (Either.isLeft(wire)) {
      return fail(`malformed compact commitment: ${ParseResult.TreeFormatter.formatErrorSync(wire.left)}`);
    }
    const w = wire.right;
    const role = roleOfWire(w.o);
    return Effect.succeed(
      w.t === "s3"
        ? S3Commitment.make({ endpoint: w.e, bucket: w.b, region: w.r, accessKeyId: w.a, secretAccessKey: w.s, role })
        : FilesystemCommitment.make({ dir: w.d, role }),
    );
  }
  const legacy = legacyPattern.exec(text);
  if (legacy !== null) {
    const [, accountId = "", accessKeyId = "", secretAccessKey = ""] = legacy;
    // The reference's miners commit this format; it has no room for a role: a peer's.
    return Effect.succeed(
      S3Commitment.make({ endpoint: r2Endpoint(accountId), bucket: accountId, region: "auto", accessKeyId, secretAccessKey, role: "peer" }),
    );
  }
  return fail(`not a known commitment format (${text.length} characters, starts ${JSON.stringify(text.slice(0, 8))})`);
};
