/**
 * The receiver's aggregation of one tensor over peers, as the reference's outer_step:
 * per-peer L2 norms of the dequantized values, clip factors min(1, median / (norm + 1e-8)) with
 * the LOWER middle as median, and per coordinate the mean over the peers that selected it
 * (sequential float32 sum in peer order, divided by that count). Unselected coordinates are 0.
 */
import { Either } from "effect"
import { CodecError } from "./errors.ts"
import { chunkBase, layoutOf } from "./layout.ts"
import type { TensorLayout } from "./layout.ts"
import { dequantTable } from "./quantize.ts"
import type { TensorUpdate } from "./update.ts"

const f32 = Math.fround
const EPS = f32(1e-8)

/**
 * How many codes are 1, 2 and 3, or undefined when some code is >= 4. SWAR over 32-bit words:
 * four codes per step, bit 0 and bit 1 of each byte summed in byte lanes (flushed before a lane
 * can pass 255), since a scalar loop was a third of the aggregation time.
 */
const countCodes = (codes: Uint8Array): readonly [number, number, number] | undefined => {
  const n = codes.length
  // the aligned middle is read as words; head and tail bytes one by one
  const head = Math.min(n, (4 - (codes.byteOffset & 3)) & 3)
  const words = (n - head) >> 2
  let odd = 0
  let high = 0
  let both = 0
  let bad = 0
  const byte = (q: number): void => {
    odd += q & 1
    high += (q >> 1) & 1
    both += q & (q >> 1) & 1
    bad |= q
  }
  for (let e = 0; e < head; e++) byte(codes[e]!)
  // no view when there are no words: the aligned offset may then lie past the buffer's end
  const w32 = words > 0 ? new Uint32Array(codes.buffer, codes.byteOffset + head, words) : new Uint32Array(0)
  const lanes = (x: number): number => (x & 0xff) + ((x >>> 8) & 0xff) + ((x >>> 16) & 0xff) + (x >>> 24)
  for (let w0 = 0; w0 < words; w0 += 255) {
    let lo = 0
    let hi = 0
    let bb = 0
    const end = Math.min(words, w0 + 255)
    for (let w = w0; w < end; w++) {
      const v = w32[w]!
      const l = v & 0x01010101
      const h = (v >>> 1) & 0x01010101
      lo += l
      hi += h
      bb += l & h
      bad |= v
    }
    odd += lanes(lo)
    high += lanes(hi)
    both += lanes(bb)
  }
  for (let e = head + 4 * words; e < n; e++) byte(codes[e]!)
  if ((bad & 0xfcfcfcfc) !== 0) return undefined
  return [odd - both, high - both, both]
}

/** L2 norm of a peer's dequantized values (exact sum of squares, rounded to float32). */
export const peerNorm = (u: TensorUpdate): number => {
  const dq = dequantTable(u)
  const codes = u.codes
  let c = countCodes(codes)
  if (c === undefined) {
    // codes >= 4 (never from decode or compress) count as bin 0, as they always have
    let c1 = 0
    let c2 = 0
    let c3 = 0
    for (let e = 0; e < codes.length; e++) {
      const q = codes[e]!
      c1 += q === 1 ? 1 : 0
      c2 += q === 2 ? 1 : 0
      c3 += q === 3 ? 1 : 0
    }
    c = [c1, c2, c3]
  }
  const counts = [codes.length - c[0] - c[1] - c[2], c[0], c[1], c[2]]
  let ss = 0
  for (let b = 0; b < dq.length; b++) ss += counts[b]! * dq[b]! * dq[b]!
  return f32(Math.sqrt(ss))
}

/** torch.median: for an even count the lower of the two middle values. */
export const lowerMedian = (xs: ArrayLike<number>): number => {
  const s = Float64Array.from(xs).sort()
  return s[(s.length - 1) >> 1]!
}

/** float32 `min(1, median / (norm + 1e-8))` per peer. */
export const clipFactors = (norms: ArrayLike<number>): Float32Array => {
  const m = lowerMedian(norms)
  const out = new Float32Array(norms.length)
  for (let i = 0; i < norms.length; i++) {
    const f = f32(m / f32(norms[i]! + EPS))
    out[i] = f > 1 ? 1 : f
  }
  return out
}

export interface Aggregated {
  readonly dense: Float32Array
  readonly norms: Float32Array
  readonly median: number
  readonly factors: Float32Array
}

export interface AggregateOptions {
  /** Use these clip factors instead of computing them (to check against reference files). */
  readonly factors?: ArrayLike<number>
  /** Write into this zero-initialised-or-not buffer of the tensor's size instead of allocating. */
  readonly out?: Float32Array
}

const fail = (reason: CodecError["reason"], message: string) => Either.left(new CodecError({ reason, message }))

const OK = 0
const OUT_OF_RANGE = 1
const NON_FINITE = 2

/**
 * The hot loop, kept out of the generator so the JIT compiles it as a plain function. Per chunk,
 * all peers accumulate into an L1-sized scratch; the output is zeroed one block row at a time,
 * just before that row's chunks are written, so the scattered writes hit cache.
 */
const accumulate = (
  l: TensorLayout,
  updates: readonly TensorUpdate[],
  scaled: readonly Float32Array[],
  dense: Float32Array,
  zero: boolean,
): number => {
  const P = updates.length
  const totalk = l.totalk
  // 16-bit counts and coordinates keep the three per-chunk arrays within L1 (~6% faster):
  // j < totalk <= 4096 always, a count reaches P, so more than 65535 peers count in 32 bits
  const acc = new Float32Array(totalk)
  const cnt = P < 65536 ? new Uint16Array(totalk) : new Int32Array(totalk)
  const touched = new Uint16Array(totalk)
  const off = l.localOffset
  const perRow = l.blocksPerRow
  let finite = true
  for (let c0 = 0; c0 < l.nChunks; c0 += perRow) {
    if (zero) {
      const start = chunkBase(l, c0)
      dense.fill(0, start, start + perRow * totalk)
    }
    for (let c = c0; c < c0 + perRow; c++) {
      let nt = 0
      for (let p = 0; p < P; p++) {
        const u = updates[p]!
        const sv = scaled[p]!
        const idx = u.indices
        const codes = u.codes
        const end = (c + 1) * u.kEff
        for (let e = c * u.kEff; e < end; e++) {
          const j = idx[e]!
          const q = codes[e]!
          if (j >= totalk || q >= sv.length) return OUT_OF_RANGE
          // acc is 0 at an untouched j (0 + v as torch's include_self=False). Branch-free: which
          // j are new is random, and JavaScriptCore compiles `m === 0 ? 1 : 0` to a branch that
          // mispredicts; (m - 1) >>> 31 is 1 exactly for m = 0.
          const m = cnt[j]!
          touched[nt] = j
          nt += (m - 1) >>> 31
          cnt[j] = m + 1
          acc[j] = acc[j]! + sv[q]!
        }
      }
      const base = chunkBase(l, c)
      for (let t = 0; t < nt; t++) {
        const j = touched[t]!
        const m = cnt[j]!
        // x / 1 is x: dividing always avoids a branch on the random count
        const v = f32(acc[j]! / m)
        if (v - v !== 0) finite = false
        dense[base + off[j]!] = v
        cnt[j] = 0
        acc[j] = 0
      }
    }
  }
  return finite ? OK : NON_FINITE
}

export const aggregate = (
  updates: readonly TensorUpdate[],
  options: AggregateOptions = {},
): Either.Either<Aggregated, CodecError> =>
  Either.gen(function* () {
    const first = updates[0]
    if (first === undefined) return yield* fail("NoPeers", "no updates to aggregate")
    const l = yield* layoutOf(first.shape, first.chunk)
    for (const u of updates) {
      if (u.chunk !== first.chunk || u.shape.length !== first.shape.length || u.shape.some((d, i) => d !== first.shape[i])) {
        return yield* fail("PeerMismatch", `${first.name}: peers disagree on shape or chunk`)
      }
      const n = l.nChunks * u.kEff
      if (u.kEff < 1 || u.kEff > l.totalk || u.indices.length !== n || u.codes.length !== n) {
        return yield* fail("LengthMismatch", `${first.name}: a peer's update lengths do not match the shape`)
      }
    }
    const P = updates.length
    const norms = Float32Array.from(updates, peerNorm)
    const median = lowerMedian(norms)
    const factors = options.factors === undefined ? clipFactors(norms) : Float32Array.from(options.factors)
    if (factors.length !== P) return yield* fail("PeerMismatch", "one clip factor per peer expected")
    // Each peer contributes one of at most 4 values: its dequantized bins times its factor.
    const scaled = updates.map((u, i) => {
      const dq = dequantTable(u)
      for (let b = 0; b < dq.length; b++) dq[b] = dq[b]! * factors[i]!
      return dq
    })
    if (options.out !== undefined && options.out.length !== l.numel) {
      return yield* fail("LengthMismatch", `${first.name}: output buffer has the wrong length`)
    }
    const dense = options.out ?? new Float32Array(l.numel)
    const status = accumulate(l, updates, scaled, dense, options.out !== undefined)
    if (status === OUT_OF_RANGE) return yield* fail("LengthMismatch", `${first.name}: index or code out of range`)
    if (status === NON_FINITE) return yield* fail("NonFinite", `${first.name}: non-finite aggregate; the round is rejected for this tensor`)
    return { dense, norms, median, factors }
  })
