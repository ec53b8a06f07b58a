/**
 * One miner step for one tensor: error feedback, chunked top-k, quantization, and removal of what
 * was sent from the error-feedback buffer (the quantization error stays in it).
 */
import { Either } from "effect"
import { CodecError } from "./errors.ts"
import { chunkBase, clampK, layoutOf } from "./layout.ts"
import type { TensorLayout } from "./layout.ts"
import type { SparseLoCoParams } from "./params.ts"
import { checkParams } from "./params.ts"
import { dequantTable, quantize } from "./quantize.ts"
import { pickTopK, quickselect, SAMPLE_STRIDE, samplePlan, TopKScratch } from "./select.ts"
import type { TensorUpdate } from "./update.ts"

const f32 = Math.fround
const ABS = 0x7fffffff

export interface Compressed {
  readonly update: TensorUpdate
  /** The error-feedback buffer after the step: the same array that was passed in, updated in place. */
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
 * `ef <- fround(fround(ef * beta) + delta)` over one chunk fused with candidate collection.
 * Returns the number of candidates (chunk-local indices in ascending order).
 */
const updateChunk = (
  l: TensorLayout,
  base: number,
  ef: Float32Array,
  efBits: Uint32Array,
  delta: Float32Array,
  beta: number,
  k: number,
  sc: TopKScratch,
): number => {
  const totalk = l.totalk
  const off = l.localOffset
  let threshold = 0
  if (k < totalk) {
    const { s, rank } = samplePlan(totalk, k)
    const sb = sc.sampleBits
    for (let i = 0; i < s; i++) {
      const p = base + off[(i * SAMPLE_STRIDE) % totalk]!
      sb[0] = f32(ef[p]! * beta) + delta[p]!
      sc.sampleKeys[i] = sc.sampleBitsU[0]! & ABS
    }
    // rank-th largest of the sample
    threshold = quickselect(sc.sampleKeys, s, s - rank)
  }
  const { candIdx, candKey } = sc
  const bh = l.edges.length === 2 ? l.edges[0]! : 1
  const bw = l.edges.length === 2 ? l.edges[1]! : l.edges[0]!
  let cnt = 0
  let j = 0
  for (let hh = 0; hh < bh; hh++) {
    const row = base + hh * l.cols
    for (let ww = 0; ww < bw; ww++, j++) {
      const i = row + ww
      ef[i] = f32(ef[i]! * beta) + delta[i]!
      const key = efBits[i]! & ABS
      if (key >= threshold) {
        candIdx[cnt] = j
        candKey[cnt] = key
        cnt++
      }
    }
  }
  if (cnt < k) {
    // The sample overshot: every element is a candidate.
    for (let jj = 0; jj < totalk; jj++) {
      candIdx[jj] = jj
      candKey[jj] = efBits[base + off[jj]!]! & ABS
    }
    cnt = totalk
  }
  return cnt
}

/** EF update and top-k over every chunk; fills indices (ascending per chunk), dense positions and values. */
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
  for (let c = 0; c < l.nChunks; c++) {
    const base = chunkBase(l, c)
    const cnt = updateChunk(l, base, ef, efBits, delta, beta, k, sc)
    const at = c * k
    pickTopK(sc, cnt, k, indices, at)
    for (let e = at; e < at + k; e++) {
      const q = base + off[indices[e]!]!
      pos[e] = q
      vals[e] = ef[q]!
    }
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
    const dq = dequantTable(stats)
    for (let e = 0; e < n; e++) ef[pos[e]!] = ef[pos[e]!]! - dq[codes[e]!]!
    const update: TensorUpdate = { name, shape: [...shape], chunk: p.chunk, kEff: k, indices, codes, ...stats }
    return { update, ef }
  })

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
    const dq = dequantTable(u)
    const off = l.localOffset
    for (let c = 0; c < l.nChunks; c++) {
      const base = chunkBase(l, c)
      for (let e = c * u.kEff; e < (c + 1) * u.kEff; e++) {
        const j = u.indices[e]!
        const q = u.codes[e]!
        if (j >= l.totalk || q >= dq.length) {
          return yield* Either.left(new CodecError({ reason: "LengthMismatch", message: `${u.name}: index or code out of range` }))
        }
        dense[base + off[j]!] = dq[q]!
      }
    }
    return dense
  })
