import { describe, expect, test } from "bun:test"
import { Either, FastCheck } from "effect"
import {
  aggregatorKey, buildKey, checkpointKey, debugKey, gradientKey, latestKey, parseKey, peersKey, startWindowKey, validateBucket, validateKey,
} from "../src/index.ts"
import type { ParsedKey } from "../src/index.ts"

describe("keys: the reference layout", () => {
  test("builders spell the reference's names", () => {
    expect(gradientKey(123, 7, "0.2.73")).toBe("gradient-123-7-v0.2.73")
    expect(debugKey(123, 7, "0.2.73")).toBe("debug-123-7-v0.2.73")
    expect(peersKey(500, "0.2.73")).toBe("peers_500_v0.2.73.json")
    expect(startWindowKey("0.2.73")).toBe("start_window_v0.2.73.json")
    expect(aggregatorKey(9, "0.2.73")).toBe("aggregator-9-v0.2.73")
    expect(checkpointKey("0.2.73", 40, "model-00001-of-00002.safetensors")).toBe("checkpoints/0.2.73/40/model-00001-of-00002.safetensors")
    expect(latestKey("0.2.73")).toBe("checkpoints/0.2.73/_LATEST.json")
  })

  test("builders refuse what would break the namespace", () => {
    expect(() => gradientKey(-1, 0, "1")).toThrow(RangeError)
    expect(() => gradientKey(1.5, 0, "1")).toThrow(RangeError)
    expect(() => gradientKey(1, 0, "1/2")).toThrow(RangeError)
    expect(() => checkpointKey("1", 1, "../x")).toThrow(RangeError)
  })

  const version = FastCheck.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,11}$/)
  const index = FastCheck.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
  const name = FastCheck.array(FastCheck.stringMatching(/^[A-Za-z0-9_+=-][A-Za-z0-9._+=-]{0,8}$/), { minLength: 1, maxLength: 3 }).map((s) => s.join("/"))
  const parsed: FastCheck.Arbitrary<ParsedKey> = FastCheck.oneof(
    FastCheck.record({ kind: FastCheck.constantFrom("gradient" as const, "debug" as const), window: index, uid: index, version }),
    FastCheck.record({ kind: FastCheck.constantFrom("peers" as const, "aggregator" as const), window: index, version }),
    FastCheck.record({ kind: FastCheck.constantFrom("start_window" as const, "latest" as const), version }),
    FastCheck.record({ kind: FastCheck.constant("checkpoint" as const), version, window: index, name }),
  )

  test("property: parse(build(k)) = k, and every built key is safe", () => {
    FastCheck.assert(FastCheck.property(parsed, (k) => {
      const key = buildKey(k)
      expect(Either.isRight(validateKey(key))).toBe(true)
      expect(parseKey(key)).toEqual(Either.right(k))
    }), { numRuns: 300 })
  })

  test("foreign names do not parse", () => {
    for (const key of ["gradient-01-2-v1", "gradient-1-2-v", "gradient-1-2", "gradient--1-2-v1", "peers_1_v1", "checkpoints/1/x/y", "checkpoints/1/2/../y", "random.bin", ".tmp/x.part"]) {
      expect(Either.isLeft(parseKey(key))).toBe(true)
    }
  })

  test("bucket names follow S3's rules", () => {
    for (const ok of ["abc", "my-bucket.1", "a".repeat(63)]) expect(Either.isRight(validateBucket(ok))).toBe(true)
    for (const bad of ["ab", "A-b", ".abc", "abc-", "a..b", "a".repeat(64), "a/b", "../x"]) expect(Either.isLeft(validateBucket(bad))).toBe(true)
  })
})
