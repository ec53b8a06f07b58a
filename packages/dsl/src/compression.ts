/** How a peer's pseudo-gradient travels: SparseLoCo, or full precision (`none`, plain DiLoCo). */
import { Schema } from "effect"
import { Decay, numberWhere, oneOf, Positive, PositiveInt } from "./fields.ts"

/** Chunk indices are 12-bit (4096 = 64 x 64 positions), whatever the index coding. */
export const MAX_CHUNK_EDGE = 64
/** Quantization codes travel in 2 bits, so at most 4 bins. */
export const VALUE_BITS = 2
export const MAX_QUANT_BINS = 2 ** VALUE_BITS

export const SparseLoCoCompression = Schema.Struct({
  kind: Schema.Literal("sparseloco"),
  /** Target chunk edge: each dimension is cut by its largest divisor <= chunk. */
  chunk: numberWhere(`an integer in 1..${MAX_CHUNK_EDGE} (indices are 12-bit)`, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_CHUNK_EDGE),
  /** Values kept per chunk. */
  topk: PositiveInt,
  efDecay: Decay,
  quantBins: numberWhere(
    `an integer in 2..${MAX_QUANT_BINS} (codes travel in ${VALUE_BITS} bits)`,
    (n) => Number.isInteger(n) && n >= 2 && n <= MAX_QUANT_BINS,
  ),
  quantRange: Positive,
  indexCoding: oneOf("packed12", "rice"),
}).pipe(
  Schema.filter((c) => {
    const chunkLength = c.chunk * c.chunk
    // Two indices pack into three bytes, so the reference keeps k even.
    return c.topk % 2 === 0 && c.topk <= chunkLength
      ? undefined
      : { path: ["topk"], message: `expected an even integer <= ${chunkLength}, got ${c.topk}` }
  }),
)

export const NoCompression = Schema.Struct({ kind: Schema.Literal("none") })

export const CompressionSpec = Schema.Union(SparseLoCoCompression, NoCompression).annotations({
  identifier: "CompressionSpec",
})
export type CompressionSpec = typeof CompressionSpec.Type
export type SparseLoCoCompression = typeof SparseLoCoCompression.Type
