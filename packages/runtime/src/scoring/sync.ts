/**
 * Sync score: how far a peer's published slice of its parameters is from the validator's model
 * at the same point (before the window's outer step), in units of the model's typical per-window
 * change: steps = mean|peer - validator| / mean|validator_w - validator_{w-1}|,
 * sync = (1 - min(steps, max) / max) ^ exponent.
 */
type Slice = Readonly<Record<string, ReadonlyArray<number>>>

/** Mean |a - b| over the values both slices hold; Infinity if a tensor of `b` is missing or mis-sized in `a`. */
export const meanAbsDiff = (a: Slice, b: Slice): number => {
  let sum = 0
  let n = 0
  for (const [name, values] of Object.entries(b)) {
    const other = a[name]
    if (other === undefined || other.length !== values.length) return Number.POSITIVE_INFINITY
    for (let i = 0; i < values.length; i++) {
      sum += Math.abs(other[i]! - values[i]!)
      n++
    }
  }
  return n === 0 ? 0 : sum / n
}

/** Steps behind: the distance over the typical per-window change (0 if equal; Infinity if unknown change and not equal). */
export const stepsBehind = (peer: Slice, validator: Slice, typicalChange: number): number => {
  const d = meanAbsDiff(peer, validator)
  if (!Number.isFinite(d)) return Number.POSITIVE_INFINITY
  if (d === 0) return 0
  return typicalChange > 0 ? d / typicalChange : Number.POSITIVE_INFINITY
}

export const syncScore = (steps: number, maxStepsBehind: number, exponent: number): number => {
  const x = Number.isNaN(steps) ? maxStepsBehind : Math.min(Math.max(steps, 0), maxStepsBehind)
  return (1 - x / maxStepsBehind) ** exponent
}
