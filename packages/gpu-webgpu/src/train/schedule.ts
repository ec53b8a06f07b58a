/** Learning-rate schedules: a function from the 0-based index of the step being taken to a rate. */
export type LrSchedule = (step: number) => number

export interface WarmupCosine {
  readonly peak: number
  /** steps of linear warmup from peak/warmupSteps up to peak */
  readonly warmupSteps: number
  /** step at which the cosine reaches `floor`; later steps stay there */
  readonly totalSteps: number
  readonly floor?: number
}

/** Linear warmup to `peak`, then cosine decay to `floor` (default 0) at `totalSteps`. */
export const warmupCosine = ({ peak, warmupSteps, totalSteps, floor = 0 }: WarmupCosine): LrSchedule => (step) => {
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps
  if (step >= totalSteps) return floor
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps)
  return floor + 0.5 * (peak - floor) * (1 + Math.cos(Math.PI * progress))
}

export type LearningRate = number | LrSchedule | WarmupCosine

export const toSchedule = (lr: LearningRate): LrSchedule =>
  typeof lr === "number" ? () => lr : typeof lr === "function" ? lr : warmupCosine(lr)
