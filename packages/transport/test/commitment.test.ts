import { describe, expect, test } from "bun:test"
import { Either, FastCheck, Schema } from "effect"
import { PeerLocationFromCommitment, r2Endpoint, validateBucket } from "../src/index.ts"

const decode = Schema.decodeUnknownEither(PeerLocationFromCommitment)
const encode = Schema.encodeEither(PeerLocationFromCommitment)

describe("chain commitments -> peer locations", () => {
  test("splits account id, access key and secret; the bucket is the account id on R2", () => {
    const account = "0123456789abcdef0123456789abcdef"
    const access = "A".repeat(16) + "b".repeat(16)
    const secret = "c".repeat(32) + "9".repeat(32)
    const decoded = decode(account + access + secret)
    expect(decoded).toEqual(Either.right({ endpoint: r2Endpoint(account), region: "auto", bucket: account, accessKeyId: access, secretAccessKey: secret, forcePathStyle: true }))
    expect(Either.isRight(decoded) && Either.isRight(validateBucket(decoded.right.bucket))).toBe(true)
  })

  test("property: encode(decode(c)) = c for every well-formed commitment", () => {
    const commitment = FastCheck.tuple(
      FastCheck.stringMatching(/^[0-9a-f]{32}$/), FastCheck.stringMatching(/^[0-9A-Fa-f]{32}$/), FastCheck.stringMatching(/^[0-9A-Fa-f]{64}$/),
    ).map((parts) => parts.join(""))
    FastCheck.assert(FastCheck.property(commitment, (c) => {
      const decoded = decode(c)
      expect(Either.isRight(decoded) && encode(decoded.right)).toEqual(Either.right(c))
    }), { numRuns: 100 })
  })

  test("malformed commitments are a ParseError, not a crash", () => {
    for (const bad of ["", "x".repeat(128), "0".repeat(127), "0".repeat(129), "A".repeat(128), 42, null]) {
      const decoded = decode(bad)
      expect(Either.isLeft(decoded) && decoded.left._tag).toBe("ParseError")
    }
  })
})
