/** One peer's compressed update of one tensor, as produced by compress and carried on the wire. */
export interface TensorUpdate {
  readonly name: string
  readonly shape: readonly number[]
  /** Target chunk edge the layout was derived from. */
  readonly chunk: number
  /** Entries per chunk. */
  readonly kEff: number
  /** Chunk-local indices, `kEff` per chunk, chunks in layout order. */
  readonly indices: Uint16Array
  /** One code per entry, `0..lookup.length-1`, aligned with `indices`. */
  readonly codes: Uint8Array
  readonly shift: number
  readonly scale: number
  /** Per-bin centroid of the centred values (float32). */
  readonly lookup: Float32Array
}

/** A full-precision tensor (DiLoCo baseline, `compression: none`). */
export interface DenseTensor {
  readonly name: string
  readonly shape: readonly number[]
  readonly values: Float32Array
}
