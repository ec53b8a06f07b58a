/** SparseLoCo settings, structurally the `sparseloco` compression spec of @covenant/dsl. */
import { Either } from "effect"
import { CodecError } from "./errors.ts"

export type IndexCoding = "packed12" | "rice"

export interface SparseLoCoParams {
  /** Target chunk edge (64): each dimension is cut by its largest divisor <= chunk. */
  readonly chunk: number
  /** Values kept per chunk (before the reference's clamping). */
  readonly topk: number
  /** Error-feedback decay beta (0.95). */
  readonly efDecay: number
  /** Quantization bins: 2..4 (codes travel in 2 bits). */
  readonly quantBins: number
  /** Quantization range in sigmas (6). */
  readonly quantRange: number
  readonly indexCoding: IndexCoding
}

/** The settings of the 72B run. */
export const defaultParams: SparseLoCoParams = {
  chunk: 64,
  topk: 64,
  efDecay: 0.95,
  quantBins: 4,
  quantRange: 6,
  indexCoding: "rice",
}

export const checkParams = (p: SparseLoCoParams): Either.Either<SparseLoCoParams, CodecError> => {
  const bad = (message: string) => Either.left(new CodecError({ reason: "BadParams", message }))
  if (!Number.isSafeInteger(p.chunk) || p.chunk < 1 || p.chunk > 64) return bad(`chunk must be an integer in 1..64 (12-bit indices), got ${p.chunk}`)
  if (!Number.isSafeInteger(p.topk) || p.topk < 1) return bad(`topk must be a positive integer, got ${p.topk}`)
  if (!(p.efDecay >= 0 && p.efDecay <= 1)) return bad(`efDecay must be in [0, 1], got ${p.efDecay}`)
  if (!Number.isSafeInteger(p.quantBins) || p.quantBins < 2 || p.quantBins > 4) return bad(`quantBins must be 2..4 (2-bit codes), got ${p.quantBins}`)
  if (!(p.quantRange > 0 && Number.isFinite(p.quantRange))) return bad(`quantRange must be positive, got ${p.quantRange}`)
  if (p.indexCoding !== "packed12" && p.indexCoding !== "rice") return bad(`unknown index coding ${String(p.indexCoding)}`)
  return Either.right(p)
}
