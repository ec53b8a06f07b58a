import { describe, expect, test } from "bun:test";
import { Arbitrary, Effect, Either, FastCheck as fc } from "effect";
import { Commitment, decodeCommitment, encodeCommitment, FilesystemCommitment, maxCommitmentBytes, S3Commitment } from "../src/index.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runSync(Effect.either(effect));
const tagOf = <A>(result: Either.Either<A, { readonly _tag: string }>) => (Either.isLeft(result) ? result.left._tag : "ok");

describe("Commitment codec", () => {
  test("compact encoding round-trips every commitment that fits, with either role, and refuses the rest", () => {
    fc.assert(
      fc.property(Arbitrary.make(Commitment), (commitment) => {
        const encoded = run(encodeCommitment(commitment));
        const o = commitment.role === "validator" ? "v" : "p";
        const json = JSON.stringify(
          commitment._tag === "S3"
            ? { v: 1, t: "s3", e: commitment.endpoint, b: commitment.bucket, r: commitment.region, a: commitment.accessKeyId, s: commitment.secretAccessKey, o }
            : { v: 1, t: "fs", d: commitment.dir, o },
        );
        const expectedBytes = 4 + Buffer.from(json, "utf8").toString("base64url").length;
        if (expectedBytes > maxCommitmentBytes) {
          expect(Either.isLeft(encoded) && encoded.left._tag).toBe("CommitmentFormatError");
          return;
        }
        if (Either.isLeft(encoded)) throw new Error(`refused a ${expectedBytes}-byte commitment`);
        expect(encoded.right.startsWith("ct1:")).toBe(true);
        expect(Either.getOrUndefined(run(decodeCommitment(encoded.right)))).toEqual(commitment);
      }),
      { numRuns: 200 },
    );
  });

  test("each role round-trips, on both locations; one made without a role is a peer's", () => {
    const s3 = { endpoint: "http://127.0.0.1:4569", bucket: "node-1", region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
    for (const role of ["peer", "validator"] as const) {
      for (const commitment of [S3Commitment.make({ ...s3, role }), FilesystemCommitment.make({ dir: "/shared/node-1", role })]) {
        const encoded = run(encodeCommitment(commitment));
        if (Either.isLeft(encoded)) throw encoded.left;
        expect(Either.getOrUndefined(run(decodeCommitment(encoded.right)))?.role).toBe(role);
      }
    }
    expect(FilesystemCommitment.make({ dir: "/x" }).role).toBe("peer");
  });

  test("a compact commitment made before roles (no `o`) decodes as a peer's", () => {
    const old = (wire: object) => `ct1:${Buffer.from(JSON.stringify(wire)).toString("base64url")}`;
    const fs = run(decodeCommitment(old({ v: 1, t: "fs", d: "/shared/old" })));
    const s3 = run(decodeCommitment(old({ v: 1, t: "s3", e: "http://127.0.0.1:4569", b: "old", r: "us-east-1", a: "K", s: "S" })));
    expect(Either.getOrUndefined(fs)).toEqual(FilesystemCommitment.make({ dir: "/shared/old", role: "peer" }));
    expect(Either.getOrUndefined(s3)?.role).toBe("peer");
    // An unknown role is malformed, not a peer.
    expect(tagOf(run(decodeCommitment(old({ v: 1, t: "fs", d: "/x", o: "x" }))))).toBe("CommitmentFormatError");
  });

  test("the reference's 128-character string decodes to an R2 bucket named after the account", () => {
    const account = "0123456789abcdef0123456789abcdef";
    const keyId = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    const secret = "s".repeat(32) + "T".repeat(32);
    const decoded = run(decodeCommitment(account + keyId + secret));
    expect(Either.isRight(decoded) ? decoded.right : undefined).toEqual(
      S3Commitment.make({ endpoint: `https://${account}.r2.cloudflarestorage.com`, bucket: account, region: "auto", accessKeyId: keyId, secretAccessKey: secret, role: "peer" }),
    );
    if (Either.isLeft(decoded)) throw decoded.left;
    expect(Either.getOrUndefined(run(encodeCommitment(decoded.right, "legacy")))).toBe(account + keyId + secret);
    // It has no room for a role: a validator's location would read as a peer's, so it is refused.
    expect(tagOf(run(encodeCommitment({ ...decoded.right, role: "validator" }, "legacy")))).toBe("CommitmentFormatError");
  });

  test("locations the legacy format cannot carry, and unknown strings, are typed errors", () => {
    const s3 = S3Commitment.make({ endpoint: "http://127.0.0.1:4569", bucket: "peer-1", region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
    const tags = [
      tagOf(run(encodeCommitment(s3, "legacy"))),
      tagOf(run(encodeCommitment(FilesystemCommitment.make({ dir: "/x", role: "peer" }), "legacy"))),
      tagOf(run(decodeCommitment("hello"))),
      tagOf(run(decodeCommitment("ct1:not-base64-json"))),
      tagOf(run(decodeCommitment(`ct1:${Buffer.from(JSON.stringify({ v: 2, t: "fs", d: "/x" })).toString("base64url")}`))),
      tagOf(run(decodeCommitment("x".repeat(127)))),
    ];
    expect(tags).toEqual(Array(6).fill("CommitmentFormatError"));
  });
});
