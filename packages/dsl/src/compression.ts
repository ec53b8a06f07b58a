/** How a peer's pseudo-gradient travels: SparseLoCo, or full precision (`none`, plain DiLoCo). */
import { Schema } from "effect"
import { Decay, oneOf, Positive, PositiveInt } from "./fields.ts"

/** 12-bit indices address at most 4096 positions inside one chunk. */
export const PACKED12_MAX_CHUNK_LENGTH = 4096

export const SparseLoCoCompression = Schema.Struct({
  kind: Schema.Literal("sparseloco"),
  /** Target chunk edge: each dimension is cut by its largest divisor <= chunk. */
  chunk: PositiveInt,
  /** Values kept per chunk. */
  topk: PositiveInt,
  efDecay: Decay,
  quantBins: PositiveInt,
  quantRange: Positive,
  indexCoding: oneOf("packed12", "rice"),
}).pipe(
  Schema.filter((c) => {
    const issues: Array<{ path: ReadonlyArray<string>; message: string }> = []
    const chunkLength = c.chunk * c.chunk
    // Two indices pack into three bytes, so the reference keeps k even.
    if (c.topk % 2 !== 0 || c.topk > chunkLength) {
      issues.push({ path: ["topk"], message: `expected an even integer <= ${chunkLength}, got ${c.topk}` })
    }
    if (c.indexCoding === "packed12" && chunkLength > PACKED12_MAX_CHUNK_LENGTH) {
      issues.push({
        path: ["chunk"],
        message: `expected chunk * chunk <= ${PACKED12_MAX_CHUNK_LENGTH} for 12-bit packed indices, got ${c.chunk}`,
      })
    }
    if (c.quantBins < 2) {
      issues.push({ path: ["quantBins"], message: `expected an integer >= 2, got ${c.quantBins}` })
    }
    return issues
  }),
)

export const NoCompression = Schema.Struct({ kind: Schema.Literal("none") })

export const CompressionSpec = Schema.Union(SparseLoCoCompression, NoCompression).annotations({
  identifier: "CompressionSpec",
})
export type CompressionSpec = typeof CompressionSpec.Type
export type SparseLoCoCompression = typeof SparseLoCoCompression.Type

/** Bits that carry one quantized value. */
export const bitsPerValue = (c: SparseLoCoCompression): number => Math.ceil(Math.log2(c.quantBins))
