/**
 * Exact per-chunk top-k of |x| without sorting the chunk: a strided sample gives a threshold a
 * little below the expected k-th largest |x|, one pass keeps the few candidates above it, and a
 * quickselect over the candidates finds the exact cut. Keys are the float32 bits of |x| (sign
 * cleared), which order like |x| and put NaN above infinity, as torch.topk does.
 */

/** Rearranges `a[0..n)` so that `a[r]` holds the r-th smallest key; returns it. */
export const quickselect = (a: Uint32Array, n: number, r: number): number => {
  let lo = 0
  let hi = n - 1
  while (hi > lo) {
    const mid = (lo + hi) >>> 1
    // median of three as pivot
    let x = a[lo]!
    let y = a[mid]!
    let z = a[hi]!
    if (x > y) [x, y] = [y, x]
    if (y > z) y = z < x ? x : z
    const pivot = y
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i]! < pivot) i++
      while (a[j]! > pivot) j--
      if (i <= j) {
        const t = a[i]!
        a[i] = a[j]!
        a[j] = t
        i++
        j--
      }
    }
    if (r <= j) hi = j
    else if (r >= i) lo = i
    else return a[r]!
  }
  return a[r]!
}

/** Sample size for the threshold; large enough that the fallback full scan is rare. */
const SAMPLE = 256
/** A prime coprime with every chunk length <= 4096, so sampled positions are distinct. */
const SAMPLE_STRIDE = 1031

/** Reusable buffers for one chunk length. */
export class TopKScratch {
  /** Chunk-local positions of the threshold sample. */
  readonly sampleAt: Int32Array
  readonly sampleSize: number
  readonly candIdx: Int32Array
  readonly candKey: Uint32Array
  readonly work: Uint32Array
  readonly sampleKeys: Uint32Array
  constructor(readonly totalk: number) {
    this.candIdx = new Int32Array(totalk)
    this.candKey = new Uint32Array(totalk)
    this.work = new Uint32Array(totalk)
    this.sampleSize = Math.min(totalk, SAMPLE)
    this.sampleKeys = new Uint32Array(this.sampleSize + 1)
    this.sampleAt = new Int32Array(this.sampleSize)
    for (let i = 0; i < this.sampleSize; i++) this.sampleAt[i] = (i * SAMPLE_STRIDE) % totalk
  }
}

/** How many samples to take and which sampled rank (from the top) is the threshold. */
export const samplePlan = (totalk: number, k: number): { readonly s: number; readonly rank: number } => {
  const s = Math.min(totalk, SAMPLE)
  const expected = (s * k) / totalk
  const rank = Math.min(s, Math.ceil(expected + 2 * Math.sqrt(expected) + 2))
  return { s, rank }
}

/**
 * From candidates (chunk-local index, key) in ascending index order, writes the exact k with the
 * largest keys into `out[outAt..outAt+k)`, ascending. Ties at the cut go to the lower indices.
 */
export const pickTopK = (sc: TopKScratch, cnt: number, k: number, out: Uint16Array, outAt: number): void => {
  const { candIdx, candKey, work } = sc
  if (cnt === k) {
    for (let e = 0; e < k; e++) out[outAt + e] = candIdx[e]!
    return
  }
  for (let e = 0; e < cnt; e++) work[e] = candKey[e]!
  const cut = quickselect(work, cnt, cnt - k)
  let above = 0
  for (let e = 0; e < cnt; e++) if (candKey[e]! > cut) above++
  let ties = k - above
  let o = outAt
  for (let e = 0; e < cnt; e++) {
    const key = candKey[e]!
    if (key > cut || (key === cut && ties-- > 0)) out[o++] = candIdx[e]!
  }
}
