import { describe, expect, test } from "bun:test";
import { Arbitrary, Effect, Either, FastCheck as fc } from "effect";
import { Commitment, decodeCommitment, encodeCommitment, maxCommitmentBytes, S3Commitment } from "../src/index.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runSync(Effect.either(effect));
const tagOf = <A>(result: Either.Either<A, { readonly _tag: string }>) => (Either.isLeft(result) ? result.left._tag : "ok");

describe("Commitment codec", () => {
  test("compact encoding round-trips every commitment that fits, and refuses the rest", () => {
    fc.assert(
      fc.property(Arbitrary.make(Commitment), (commitment) => {
        const encoded = run(encodeCommitment(commitment));
        const json = JSON.stringify(
          commitment._tag === "S3"
            ? { v: 1, t: "s3", e: commitment.endpoint, b: commitment.bucket, r: commitment.region, a: commitment.accessKeyId, s: commitment.secretAccessKey }
            : { v: 1, t: "fs", d: commitment.dir },
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

  test("the reference's 128-character string decodes to an R2 bucket named after the account", () => {
    const account = "0123456789abcdef0123456789abcdef";
    const keyId = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    const secret = "s".repeat(32) + "T".repeat(32);
    const decoded = run(decodeCommitment(account + keyId + secret));
    expect(Either.isRight(decoded) ? decoded.right : undefined).toEqual(
      S3Commitment.make({ endpoint: `https://${account}.r2.cloudflarestorage.com`, bucket: account, region: "auto", accessKeyId: keyId, secretAccessKey: secret }),
    );
    if (Either.isLeft(decoded)) throw decoded.left;
    expect(Either.getOrUndefined(run(encodeCommitment(decoded.right, "legacy")))).toBe(account + keyId + secret);
  });

  test("locations the legacy format cannot carry, and unknown strings, are typed errors", () => {
    const s3 = S3Commitment.make({ endpoint: "http://127.0.0.1:4569", bucket: "peer-1", region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
    const tags = [
      tagOf(run(encodeCommitment(s3, "legacy"))),
      tagOf(run(encodeCommitment({ _tag: "Filesystem", dir: "/x" }, "legacy"))),
      tagOf(run(decodeCommitment("hello"))),
      tagOf(run(decodeCommitment("ct1:not-base64-json"))),
      tagOf(run(decodeCommitment(`ct1:${Buffer.from(JSON.stringify({ v: 2, t: "fs", d: "/x" })).toString("base64url")}`))),
      tagOf(run(decodeCommitment("x".repeat(127)))),
    ];
    expect(tags).toEqual(Array(6).fill("CommitmentFormatError"));
  });
});
