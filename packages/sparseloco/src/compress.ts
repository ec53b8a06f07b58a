/**
 * One miner step for one tensor: error feedback, chunked top-k, quantization, and removal of what
 * was sent from the error-feedback buffer (the quantization error stays in it).
 */
import { Either } from "effect"
import { CodecError } from "./errors.ts"
import { clampK } from "@covenant/dsl"
import { chunkBase, layoutOf } from "./layout.ts"
import type { TensorLayout } from "./layout.ts"
import type { SparseLoCoParams } from "./params.ts"
import { checkParams } from "./params.ts"
import { dequantTable, quantize } from "./quantize.ts"
import { pickTopK, samplePlan, TopKScratch } from "./select.ts"
import type { TensorUpdate } from "./update.ts"

const f32 = Math.fround
const ABS = 0x7fffffff

export interface Compressed {
  readonly update: TensorUpdate
  /**
   * The error-feedback buffer after the step: the same array that was passed in, updated in
   * place (after a NonFinite error it holds ef_mid; the caller should zero it).
   */
  readonly ef: Float32Array
}

const scratchByLength = new Map<number, TopKScratch>()
const scratchFor = (totalk: number): TopKScratch => {
  let s = scratchByLength.get(totalk)
  if (s === undefined) {
    s = new TopKScratch(totalk)
    scratchByLength.set(totalk, s)
  }
  return s
}

/**
 * Candidates of one chunk (already error-fed, so still in cache): a threshold from a strided
 * sample, then one pass keeping keys at or above it. Returns their number (chunk-local indices
 * in ascending order); every element when the sample overshot.
 */
const candidates = (l: TensorLayout, base: number, efBits: Uint32Array, k: number, sc: TopKScratch, sampleOff: Int32Array, rank: number): number => {
  const totalk = l.totalk
  const bh = l.edges.length === 2 ? l.edges[0]! : 1
  const bw = l.edges.length === 2 ? l.edges[1]! : l.edges[0]!
  const cols = l.cols
  const { candIdx, candKey } = sc
  let threshold = 0
  if (k < totalk) {
    // rank-th largest sampled key, by insertion into a short descending list
    const top = sc.sampleKeys
    let filled = 0
    for (let i = 0; i < sampleOff.length; i++) {
      const key = efBits[base + sampleOff[i]!]! & ABS
      if (filled < rank) {
        let p = filled++
        while (p > 0 && top[p - 1]! < key) {
          top[p] = top[p - 1]!
          p--
        }
        top[p] = key
      } else if (key > top[rank - 1]!) {
        let p = rank - 1
        while (p > 0 && top[p - 1]! < key) {
          top[p] = top[p - 1]!
          p--
        }
        top[p] = key
      }
    }
    threshold = top[rank - 1]!
  }
  let cnt = 0
  let j = 0
  for (let hh = 0; hh < bh; hh++) {
    const row = base + hh * cols
    for (let ww = 0; ww < bw; ww++, j++) {
      const key = efBits[row + ww]! & ABS
      if (key >= threshold) {
        candIdx[cnt] = j
        candKey[cnt] = key
        cnt++
      }
    }
  }
  if (cnt < k) {
    // The sample overshot: every element is a candidate.
    const off = l.localOffset
    for (let jj = 0; jj < totalk; jj++) {
      candIdx[jj] = jj
      candKey[jj] = efBits[base + off[jj]!]! & ABS
    }
    cnt = totalk
  }
  return cnt
}

/** `ef <- fround(fround(ef * beta) + delta)` over a contiguous range. */
const errorFeedback = (ef: Float32Array, delta: Float32Array, beta: number, start: number, end: number): void => {
  for (let i = start; i < end; i++) ef[i] = f32(ef[i]! * beta) + delta[i]!
}

/**
 * EF update and top-k over every chunk; fills indices (ascending per chunk), dense positions and
 * values. The EF update runs one block row at a time (contiguous, and still in cache when its
 * chunks are scanned).
 */
const selectAll = (
  l: TensorLayout,
  ef: Float32Array,
  efBits: Uint32Array,
  delta: Float32Array,
  beta: number,
  k: number,
  indices: Uint16Array,
  pos: Int32Array,
  vals: Float32Array,
): void => {
  const sc = scratchFor(l.totalk)
  const off = l.localOffset
  const perRow = l.blocksPerRow
  const sampleOff = Int32Array.from(sc.sampleAt, (j) => off[j]!)
  const { rank } = samplePlan(l.totalk, k)
  for (let c0 = 0; c0 < l.nChunks; c0 += perRow) {
    const start = chunkBase(l, c0)
    errorFeedback(ef, delta, beta, start, start + perRow * l.totalk)
    for (let c = c0; c < c0 + perRow; c++) {
      const base = chunkBase(l, c)
      const cnt = candidates(l, base, efBits, k, sc, sampleOff, rank)
      const at = c * k
      pickTopK(sc, cnt, k, indices, at)
      for (let e = at; e < at + k; e++) {
        const q = base + off[indices[e]!]!
        pos[e] = q
        vals[e] = ef[q]!
      }
    }
  }
}

/** What was sent leaves the buffer: ef[pos] -= lookup[code] + shift. */
const subtractSent = (ef: Float32Array, pos: Int32Array, codes: Uint8Array, dq: Float32Array): void => {
  for (let e = 0; e < pos.length; e++) {
    const q = pos[e]!
    ef[q] = ef[q]! - dq[codes[e]!]!
  }
}

export const compress = (
  ef: Float32Array,
  delta: Float32Array,
  shape: readonly number[],
  params: SparseLoCoParams,
  name = "",
): Either.Either<Compressed, CodecError> =>
  Either.gen(function* () {
    const p = yield* checkParams(params)
    const l = yield* layoutOf(shape, p.chunk)
    if (ef.length !== l.numel || delta.length !== l.numel) {
      return yield* Either.left(
        new CodecError({ reason: "LengthMismatch", message: `${name}: ef ${ef.length} / delta ${delta.length} vs shape numel ${l.numel}` }),
      )
    }
    const k = clampK(p.topk, l.totalk)
    const n = l.nChunks * k
    const indices = new Uint16Array(n)
    const codes = new Uint8Array(n)
    const vals = new Float32Array(n)
    const pos = new Int32Array(n)
    const efBits = new Uint32Array(ef.buffer, ef.byteOffset, ef.length)
    const beta = f32(p.efDecay)
    selectAll(l, ef, efBits, delta, beta, k, indices, pos, vals)
    const stats = quantize(vals, n, codes, p.quantBins, p.quantRange)
    if (!Number.isFinite(stats.shift) || !stats.lookup.every(Number.isFinite)) {
      return yield* Either.left(new CodecError({ reason: "NonFinite", message: `${name}: non-finite values in the error-feedback buffer` }))
    }
    subtractSent(ef, pos, codes, dequantTable(stats))
    const update: TensorUpdate = { name, shape: [...shape], chunk: p.chunk, kEff: k, indices, codes, ...stats }
    return { update, ef }
  })

/** Scatters dequantized values into a zeroed dense tensor; false on an out-of-range index or code. */
const scatter = (l: TensorLayout, u: TensorUpdate, dq: Float32Array, dense: Float32Array): boolean => {
  const off = l.localOffset
  for (let c = 0; c < l.nChunks; c++) {
    const base = chunkBase(l, c)
    for (let e = c * u.kEff; e < (c + 1) * u.kEff; e++) {
      const j = u.indices[e]!
      const q = u.codes[e]!
      if (j >= l.totalk || q >= dq.length) return false
      dense[base + off[j]!] = dq[q]!
    }
  }
  return true
}

/** Dense decode of one update: dequantize and scatter into a zero tensor (the reference's transmit_grad). */
export const decompress = (u: TensorUpdate, out?: Float32Array): Either.Either<Float32Array, CodecError> =>
  Either.gen(function* () {
    const l = yield* layoutOf(u.shape, u.chunk)
    const n = l.nChunks * u.kEff
    if (u.indices.length !== n || u.codes.length !== n || (out !== undefined && out.length !== l.numel)) {
      return yield* Either.left(new CodecError({ reason: "LengthMismatch", message: `${u.name}: update lengths do not match its shape` }))
    }
    const dense = out ?? new Float32Array(l.numel)
    if (out !== undefined) dense.fill(0)
    if (!scatter(l, u, dequantTable(u), dense)) {
      return yield* Either.left(new CodecError({ reason: "LengthMismatch", message: `${u.name}: index or code out of range` }))
    }
    return dense
  })
