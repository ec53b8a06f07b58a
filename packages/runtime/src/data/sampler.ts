/**
 * Deterministic per-(uid, window) sample selection, so a validator can recompute exactly which
 * samples a miner was assigned.
 *
 * The seed formula is the reference network's: `(uid * 1_000_003 ^ window) & 0xFFFFFFFF`, computed
 * exactly (Python integer semantics). The pool drawn from that seed is OURS, not numpy's: a partial
 * Fisher-Yates shuffle over `[0, totalSamples)` (kept sparse in a Map, so memory is O(poolSize)
 * whatever the dataset size), driven by xoshiro128** seeded through splitmix32, with bounded draws
 * by rejection sampling (no modulo bias). All arithmetic is 32-bit integer (`Math.imul`, `>>>`), so
 * every JS engine produces the same stream.
 */
import { createHash } from "node:crypto"
import { Either } from "effect"
import { SamplerError } from "./errors.ts"

/** The reference run's numbers: a pool of 30 x 1024 samples, of which a miner uses 192 x 30. */
export const REFERENCE_POOL_SIZE = 30 * 1024
export const REFERENCE_SAMPLES_PER_WINDOW = 192 * 30

const TWO_32 = 0x1_0000_0000
const SEED_MULTIPLIER = 1_000_003

const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n < TWO_32

/**
 * `(uid * 1_000_003 ^ window) & 0xFFFFFFFF` as Python computes it, for uid and window in
 * `[0, 2^32)`. Only the low 32 bits of the product survive the mask, and
 * `(uid mod 2^32) * 1_000_003 < 2^52` stays exact in a double.
 */
export const windowSeed = (uid: number, window: number): Either.Either<number, SamplerError> => {
  if (!isU32(uid)) return Either.left(new SamplerError({ reason: `uid must be an integer in [0, 2^32), got ${uid}` }))
  if (!isU32(window)) return Either.left(new SamplerError({ reason: `window must be an integer in [0, 2^32), got ${window}` }))
  const low = (uid * SEED_MULTIPLIER) % TWO_32
  return Either.right((low ^ window) >>> 0)
}

/** splitmix32 step, used only to expand the 32-bit seed into xoshiro's 128-bit state. */
const splitmix32 = (state: { s: number }): number => {
  state.s = (state.s + 0x9e3779b9) >>> 0
  let z = state.s
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
  return (z ^ (z >>> 16)) >>> 0
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0

/** xoshiro128** (Blackman & Vigna), a small fast 32-bit generator with a 2^128 - 1 period. */
export class Xoshiro128 {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    const sm = { s: seed >>> 0 }
    this.a = splitmix32(sm)
    this.b = splitmix32(sm)
    this.c = splitmix32(sm)
    this.d = splitmix32(sm)
    // The all-zero state is the one fixed point; splitmix32 cannot give four zeros, but be sure.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1
  }

  /** Next uniformly distributed integer in `[0, 2^32)`. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0
    const t = (this.b << 9) >>> 0
    this.c = (this.c ^ this.a) >>> 0
    this.d = (this.d ^ this.b) >>> 0
    this.b = (this.b ^ this.c) >>> 0
    this.a = (this.a ^ this.d) >>> 0
    this.c = (this.c ^ t) >>> 0
    this.d = rotl(this.d, 11)
    return result
  }

  /** Uniform integer in `[0, bound)` for `1 <= bound <= 2^32`, unbiased by rejection. */
  below(bound: number): number {
    // Largest multiple of `bound` not above 2^32; draws at or past it are rejected.
    const limit = TWO_32 - (TWO_32 % bound)
    for (;;) {
      const r = this.nextU32()
      if (r < limit) return r % bound
    }
  }
}

/**
 * `count` distinct ids from `[0, total)` in shuffled order: the first `count` positions of a
 * Fisher-Yates shuffle of `0..total-1`, with only the touched positions stored.
 */
export const drawWithoutReplacement = (
  seed: number,
  total: number,
  count: number,
): Either.Either<Uint32Array, SamplerError> => {
  if (!Number.isInteger(total) || total < 0 || total > TWO_32) {
    return Either.left(new SamplerError({ reason: `dataset size must be an integer in [0, 2^32], got ${total}` }))
  }
  if (!Number.isInteger(count) || count < 0) {
    return Either.left(new SamplerError({ reason: `pool size must be a non-negative integer, got ${count}` }))
  }
  if (count > total) {
    return Either.left(new SamplerError({ reason: `pool of ${count} samples cannot be drawn from a dataset of ${total}` }))
  }
  const rng = new Xoshiro128(seed)
  const moved = new Map<number, number>()
  const out = new Uint32Array(count)
  for (let i = 0; i < count; i++) {
    const j = i + rng.below(total - i)
    const atJ = moved.get(j) ?? j
    const atI = moved.get(i) ?? i
    out[i] = atJ
    moved.set(j, atI)
    moved.delete(i) // position i is final; drop it to keep the map small
  }
  return Either.right(out)
}

export interface WindowSamplerConfig {
  /** Samples in the dataset (`ShardSet.totalSamples`). */
  readonly totalSamples: number
  /** Pool drawn per (uid, window); the reference uses `REFERENCE_POOL_SIZE`. */
  readonly poolSize: number
  /** Leading part of the pool a peer trains on; the reference uses `REFERENCE_SAMPLES_PER_WINDOW`. */
  readonly samplesPerWindow: number
}

/** The full pool of sample ids for (uid, window). */
export const windowPool = (
  uid: number,
  window: number,
  config: Pick<WindowSamplerConfig, "totalSamples" | "poolSize">,
): Either.Either<Uint32Array, SamplerError> =>
  Either.flatMap(windowSeed(uid, window), (seed) => drawWithoutReplacement(seed, config.totalSamples, config.poolSize))

/** The sample ids a peer trains on in a window: the first `samplesPerWindow` of its pool. */
export const windowSamples = (
  uid: number,
  window: number,
  config: WindowSamplerConfig,
): Either.Either<Uint32Array, SamplerError> => {
  const { samplesPerWindow, poolSize } = config
  if (!Number.isInteger(samplesPerWindow) || samplesPerWindow < 0 || samplesPerWindow > poolSize) {
    return Either.left(new SamplerError({ reason: `samplesPerWindow must be an integer in [0, poolSize=${poolSize}], got ${samplesPerWindow}` }))
  }
  return Either.map(windowPool(uid, window, config), (pool) => pool.slice(0, samplesPerWindow))
}

/** sha256 (hex) of the ids as consecutive little-endian u32s: what a miner reports, a validator recomputes. */
export const sampleDigest = (ids: ArrayLike<number>): string => {
  const bytes = new Uint8Array(ids.length * 4)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < ids.length; i++) view.setUint32(i * 4, ids[i], true)
  return createHash("sha256").update(bytes).digest("hex")
}
