/**
 * How SparseLoCo cuts a tensor into chunks (sparseloco.md, "Chunking"; the reference's
 * ChunkingTransformer): the one home of this arithmetic. The plan sizes the wire with it and the
 * codec (@covenant/sparseloco's `layoutOf`) lays tensors out with it.
 *
 * - per dimension, the chunk edge is the largest divisor of the dimension that is <= the target;
 * - a 2-D tensor [rows, cols] is cut into h x w blocks (`(y h)(x w) -> y x (h w)`);
 * - a 1-D tensor [n] into consecutive rows of its edge;
 * - nothing else: the reference's rearrange patterns name one or two dimensions, so a tensor of
 *   three or more dimensions is not chunked at all (the codec rejects it with BadShape).
 */

/** The largest divisor of `d` that is <= `target` (`d` itself when d <= target; 1 for a prime d > target). */
export const chunkEdge = (d: number, target: number): number => {
  if (d <= target) return d
  for (let e = target; e > 1; e--) if (d % e === 0) return e
  return 1
}

/** The chunk edge per dimension (`[h, w]` for 2-D, `[n]` for 1-D), or undefined for a shape the reference does not chunk. */
export const chunkEdges = (shape: ReadonlyArray<number>, target: number): ReadonlyArray<number> | undefined =>
  shape.length === 1 || shape.length === 2 ? shape.map((d) => chunkEdge(d, target)) : undefined

/** Chunk length and number of chunks of a tensor, or undefined for a shape the reference does not chunk (see `chunkEdges`). */
export const chunkGrid = (shape: ReadonlyArray<number>, target: number): { chunkLength: number; chunks: number } | undefined => {
  const edges = chunkEdges(shape, target)
  if (edges === undefined) return undefined
  let chunkLength = 1
  let chunks = 1
  edges.forEach((e, i) => {
    chunkLength *= e
    chunks *= shape[i]! / e
  })
  return { chunkLength, chunks }
}

/** The reference's k clamping: cap at the chunk length, at least 2, then even. */
export const clampK = (k: number, totalk: number): number => {
  let kk = Math.min(k, totalk)
  kk = Math.max(kk, 2)
  kk -= kk % 2
  // A chunk of length 1 (two prime dimensions > target) cannot hold 2 entries; the reference
  // would fail there, we send the chunk whole.
  return Math.min(kk, totalk)
}
