import { describe, expect, test } from "bun:test"
import { Either, FastCheck } from "effect"
import {
  REFERENCE_POOL_SIZE,
  REFERENCE_SAMPLES_PER_WINDOW,
  Xoshiro128,
  drawWithoutReplacement,
  sampleDigest,
  windowPool,
  windowSamples,
  windowSeed,
} from "../src/data/sampler.ts"

const seedBig = (uid: number, window: number) =>
  Number((BigInt(uid) * 1_000_003n ^ BigInt(window)) & 0xffffffffn)

describe("window seed", () => {
  test("matches values computed in Python: (uid * 1_000_003 ^ window) & 0xFFFFFFFF", () => {
    // python3 -c "print(((7*1000003)^12345)&0xFFFFFFFF)" etc.
    const pythonValues: Array<[number, number, number]> = [
      [7, 12345, 7012332],
      [65535, 2 ** 31, 3258170813],
      [65535, 2 ** 31 - 1, 1036796482],
      [4096, 2 ** 31, 1948528640],
      [1, 0, 1000003],
      [0, 5, 5],
      [50000, 1234567, 2754571127],
    ]
    for (const [uid, window, expected] of pythonValues) {
      expect(Either.getOrThrow(windowSeed(uid, window))).toBe(expected)
    }
  })

  test("equals the BigInt computation for uid < 2^16, window < 2^32 (property)", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.integer({ min: 0, max: 65535 }),
        FastCheck.integer({ min: 0, max: 2 ** 32 - 1 }),
        (uid, window) => Either.getOrThrow(windowSeed(uid, window)) === seedBig(uid, window),
      ),
      { numRuns: 2000 },
    )
  })

  test("rejects negative, fractional and oversized inputs with SamplerError", () => {
    for (const [uid, window] of [[-1, 0], [0, -1], [1.5, 0], [0, 2 ** 32], [Number.NaN, 1]] as const) {
      const r = windowSeed(uid, window)
      if (Either.isRight(r)) throw new Error(`accepted ${uid}, ${window}`)
      expect(r.left._tag).toBe("SamplerError")
    }
  })
})

describe("pool draw", () => {
  test("xoshiro128** stream matches a Python implementation of the same algorithm", () => {
    const rng = new Xoshiro128(12345)
    const first = Array.from({ length: 6 }, () => rng.nextU32())
    expect(first).toEqual([518667457, 440444462, 4232892992, 3757857622, 3939018813, 1334683535])
  })

  test("partial Fisher-Yates matches the Python reference (dense list shuffle)", () => {
    const seed = Either.getOrThrow(windowSeed(3, 10))
    expect(Array.from(Either.getOrThrow(drawWithoutReplacement(seed, 100, 10)))).toEqual([28, 35, 90, 75, 4, 18, 34, 45, 60, 89])
    expect(Array.from(Either.getOrThrow(drawWithoutReplacement(42, 1000, 20)))).toEqual([
      924, 389, 718, 155, 664, 5, 494, 416, 430, 604, 463, 732, 665, 13, 532, 525, 596, 769, 330, 387,
    ])
  })

  test("is deterministic, in range and without replacement (property)", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.integer({ min: 0, max: 2 ** 32 - 1 }),
        FastCheck.integer({ min: 1, max: 5000 }),
        FastCheck.double({ min: 0, max: 1, noNaN: true }),
        (seed, total, fraction) => {
          const count = Math.floor(total * fraction)
          const a = Either.getOrThrow(drawWithoutReplacement(seed, total, count))
          const b = Either.getOrThrow(drawWithoutReplacement(seed, total, count))
          expect(a).toEqual(b)
          expect(a.length).toBe(count)
          expect(new Set(a).size).toBe(count)
          for (const id of a) expect(id < total).toBe(true)
        },
      ),
      { numRuns: 200 },
    )
  })

  test("a full draw is a permutation", () => {
    const all = Either.getOrThrow(drawWithoutReplacement(9, 257, 257))
    expect(Array.from(all).sort((x, y) => x - y)).toEqual(Array.from({ length: 257 }, (_, i) => i))
  })

  test("reference-sized pool from a 537M-sample dataset stays distinct", () => {
    const pool = Either.getOrThrow(windowPool(65535, 2 ** 31 - 1, { totalSamples: 537_000_000, poolSize: REFERENCE_POOL_SIZE }))
    expect(pool.length).toBe(REFERENCE_POOL_SIZE)
    expect(new Set(pool).size).toBe(REFERENCE_POOL_SIZE)
    expect(Math.max(...pool) < 537_000_000).toBe(true)
  })

  test("different (uid, window) pairs give different pools", () => {
    const config = { totalSamples: 100_000, poolSize: 1024 }
    const pools = new Map<string, string>()
    for (const uid of [0, 1, 2, 255, 65535]) {
      for (const window of [0, 1, 2, 1000, 2 ** 31]) {
        const digest = sampleDigest(Either.getOrThrow(windowPool(uid, window, config)))
        pools.set(`${uid}/${window}`, digest)
      }
    }
    expect(new Set(pools.values()).size).toBe(pools.size)
  })

  test("a peer's window samples are the leading part of its pool", () => {
    const config = { totalSamples: 50_000, poolSize: REFERENCE_POOL_SIZE, samplesPerWindow: REFERENCE_SAMPLES_PER_WINDOW }
    const pool = Either.getOrThrow(windowPool(11, 77, config))
    const used = Either.getOrThrow(windowSamples(11, 77, config))
    expect(used.length).toBe(REFERENCE_SAMPLES_PER_WINDOW)
    expect(used).toEqual(pool.slice(0, REFERENCE_SAMPLES_PER_WINDOW))
  })

  test("a pool larger than the dataset, or bad sizes, give SamplerError", () => {
    for (const r of [
      windowPool(1, 1, { totalSamples: 10, poolSize: 11 }),
      windowSamples(1, 1, { totalSamples: 100, poolSize: 10, samplesPerWindow: 11 }),
      drawWithoutReplacement(1, -1, 0),
      drawWithoutReplacement(1, 10, 2.5),
    ]) {
      if (Either.isRight(r)) throw new Error("accepted")
      expect(r.left._tag).toBe("SamplerError")
    }
  })
})

describe("sample digest", () => {
  test("is sha256 of little-endian u32 ids (value from Python hashlib)", () => {
    expect(sampleDigest([0, 1, 2, 4294967295])).toBe("8eb98e5dc91be0043765dab820052016d078f57beae8de3657271bb0f1317914")
  })

  test("is stable and order-sensitive", () => {
    const ids = Uint32Array.from([5, 9, 1])
    expect(sampleDigest(ids)).toBe(sampleDigest([5, 9, 1]))
    expect(sampleDigest(ids)).not.toBe(sampleDigest([9, 5, 1]))
  })
})
