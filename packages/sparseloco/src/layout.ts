/**
 * How a parameter tensor is cut into chunks, exactly as the reference's ChunkingTransformer:
 * per dimension the largest divisor <= target; 2-D tensors are rearranged
 * `(y h)(x w) -> y x (h w)` (block rows outer, block columns inner, row-major inside a block),
 * 1-D tensors into consecutive rows; nothing above 2-D. The edge and k rules live in
 * @covenant/dsl's chunking.ts (the plan sizes the wire with the same ones); this file adds the
 * dense offsets the codec needs.
 */
import { chunkEdges } from "@covenant/dsl"
import { Either } from "effect"
import { CodecError } from "./errors.ts"

export interface TensorLayout {
  readonly shape: readonly number[]
  readonly numel: number
  /** Columns of the dense tensor (1 for a 1-D tensor is not used: `cols = n`). */
  readonly cols: number
  /** Chunk edges: `[h, w]` for 2-D, `[n]` for 1-D. */
  readonly edges: readonly number[]
  /** Blocks per row of the block grid (X); 1 for 1-D. */
  readonly blocksPerRow: number
  readonly nChunks: number
  /** Chunk length: h*w or n. */
  readonly totalk: number
  /** Dense offset of local index j relative to its chunk's base. */
  readonly localOffset: Int32Array
}

/** Dense offset of the first element of chunk `c`. */
export const chunkBase = (l: TensorLayout, c: number): number => {
  if (l.edges.length === 1) return c * l.totalk
  const h = l.edges[0]!
  const w = l.edges[1]!
  const yy = Math.floor(c / l.blocksPerRow)
  const xx = c - yy * l.blocksPerRow
  return yy * h * l.cols + xx * w
}

/** Largest tensor we address with 32-bit offsets. */
export const MAX_NUMEL = 2 ** 31 - 1

const isDim = (d: number): boolean => Number.isSafeInteger(d) && d >= 1

export const layoutOf = (shape: readonly number[], target: number): Either.Either<TensorLayout, CodecError> => {
  if (!Number.isSafeInteger(target) || target < 1 || target > 64) {
    return Either.left(new CodecError({ reason: "BadParams", message: `chunk target must be an integer in 1..64, got ${target}` }))
  }
  if ((shape.length !== 1 && shape.length !== 2) || !shape.every(isDim)) {
    return Either.left(new CodecError({ reason: "BadShape", message: `expected a 1-D or 2-D shape of positive integers, got [${shape.join(",")}]` }))
  }
  const numel = shape.reduce((a, b) => a * b, 1)
  if (numel > MAX_NUMEL) {
    return Either.left(new CodecError({ reason: "BadShape", message: `tensor of ${numel} elements is too large` }))
  }
  const edges = chunkEdges(shape, target)!
  if (shape.length === 1) {
    const n = edges[0]!
    const localOffset = new Int32Array(n)
    for (let j = 0; j < n; j++) localOffset[j] = j
    return Either.right({ shape, numel, cols: n, edges: [n], blocksPerRow: 1, nChunks: numel / n, totalk: n, localOffset })
  }
  const rows = shape[0]!
  const cols = shape[1]!
  const h = edges[0]!
  const w = edges[1]!
  const totalk = h * w
  const localOffset = new Int32Array(totalk)
  for (let hh = 0; hh < h; hh++) for (let ww = 0; ww < w; ww++) localOffset[hh * w + ww] = hh * cols + ww
  return Either.right({
    shape,
    numel,
    cols,
    edges: [h, w],
    blocksPerRow: cols / w,
    nChunks: (rows / h) * (cols / w),
    totalk,
    localOffset,
  })
}
