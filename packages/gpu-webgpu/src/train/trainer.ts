/**
 * The inner-loop training step the runtime drives: forward + backward over micro-batches
 * (gradient accumulation), global grad-norm clipping, one AdamW step.
 *
 * Weight decay applies to matrices and embeddings, not to RMSNorm gains (decaying a gain pulls
 * it towards zero rather than towards "no effect"). Moments are kept per parameter and can be
 * exported/imported by HF parameter name for checkpoints.
 */
import { Data } from "effect"
import type { Engine } from "../engine.ts"
import { AdamWState } from "../optim/adamw.ts"
import type { Tensor } from "../tensor.ts"
import { LlamaModel } from "../model/llama.ts"
import type { MatmulPrecision } from "../ops/matmul.ts"
import { isNormWeight } from "@covenant/dsl"
import type { ParameterInfo } from "../model/parameters.ts"
import type { LlamaSpec } from "../model/spec.ts"
import { toSchedule } from "./schedule.ts"
import type { LearningRate, LrSchedule } from "./schedule.ts"

export class TrainerInputError extends Data.TaggedError("TrainerInputError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

export interface TrainerOptions {
  /** sequences per forward/backward; a larger batch is accumulated over several */
  readonly microBatch: number
  readonly lr: LearningRate
  readonly beta1?: number
  readonly beta2?: number
  readonly eps?: number
  readonly weightDecay?: number
  /** global L2 norm the gradients are clipped to; Infinity turns clipping off */
  readonly maxGradNorm?: number
  /**
   * "f16": the linear layers' matmuls, forward and backward, take f16 operands (f32 accumulation)
   * on a backend with `features.shaderF16`; master weights, gradients and AdamW moments stay f32.
   * Default "f32".
   */
  readonly precision?: MatmulPrecision
}

export interface StepStats {
  readonly loss: number
  /** global gradient norm before clipping */
  readonly gradNorm: number
  readonly lr: number
  /** optimizer steps taken so far, this one included */
  readonly step: number
}

/** AdamW moments by HF parameter name, plus the number of steps taken (for bias correction). */
export interface OptimizerState {
  readonly step: number
  readonly moments: ReadonlyMap<string, { readonly m: Float32Array; readonly v: Float32Array }>
}

export class Trainer {
  private readonly adam = new AdamWState()
  private readonly schedule: LrSchedule
  private steps = 0
  private last: StepStats | null = null

  private constructor(
    readonly engine: Engine,
    readonly model: LlamaModel,
    private readonly options: TrainerOptions
  ) {
    this.schedule = toSchedule(options.lr)
  }

  static create(engine: Engine, spec: LlamaSpec, parameters: ReadonlyMap<string, Float32Array>, options: TrainerOptions): Trainer {
    if (!Number.isInteger(options.microBatch) || options.microBatch < 1) {
      throw new TrainerInputError({ reason: `microBatch must be a positive integer, got ${options.microBatch}` })
    }
    if (options.precision === "f16" && !engine.backend.features.shaderF16) {
      throw new TrainerInputError({ reason: `precision f16 needs the shaderF16 feature, which ${engine.backend.name} does not have` })
    }
    return new Trainer(engine, LlamaModel.create(engine, spec, parameters, { precision: options.precision ?? "f32" }), options)
  }

  get spec(): LlamaSpec {
    return this.model.spec
  }

  /** Optimizer steps taken so far. */
  get stepCount(): number {
    return this.steps
  }

  /** Loss, grad norm and rate of the latest step (null before the first). */
  get lastStep(): StepStats | null {
    return this.last
  }

  parameters(): ReadonlyArray<ParameterInfo> {
    return this.model.infos
  }

  readParameters(): Promise<Map<string, Float32Array>> {
    return this.model.readParameters()
  }

  writeParameters(parameters: ReadonlyMap<string, Float32Array>): void {
    this.model.writeParameters(parameters)
  }

  /**
   * One optimizer step on ids [batch, seqLen]: returns the mean next-token loss over the whole
   * batch (each micro-batch's mean loss weighted by its share of the sequences).
   */
  async step(ids: Int32Array, shape: readonly [number, number]): Promise<number> {
    const [batch, seqLen] = shape
    if (!Number.isInteger(batch) || !Number.isInteger(seqLen) || batch < 1 || seqLen < 2 || ids.length !== batch * seqLen) {
      throw new TrainerInputError({ reason: `ids has ${ids.length} values for shape [${batch}, ${seqLen}] (need seqLen >= 2)` })
    }
    const e = this.engine
    const params = this.model.parameterTensors
    e.zeroGrad(params)
    const losses: Tensor[] = []
    try {
      for (let start = 0; start < batch; start += this.options.microBatch) {
        const rows = Math.min(this.options.microBatch, batch - start)
        const microIds = ids.subarray(start * seqLen, (start + rows) * seqLen)
        losses.push(e.tidy(() => {
          const weighted = e.scale(this.model.loss(microIds, rows, seqLen), rows / batch)
          e.backward(weighted)
          return weighted
        }))
      }
      const gradNorm = await e.clipGradNorm(params, this.options.maxGradNorm ?? 1.0)
      const lr = this.schedule(this.steps)
      this.steps++
      const hp = {
        lr,
        beta1: this.options.beta1 ?? 0.9,
        beta2: this.options.beta2 ?? 0.95,
        eps: this.options.eps ?? 1e-8,
        step: this.steps
      }
      const decayed = params.filter((_, i) => !isNormWeight(this.model.infos[i]!.name))
      const gains = params.filter((_, i) => isNormWeight(this.model.infos[i]!.name))
      e.adamwStep(decayed, this.adam, { ...hp, weightDecay: this.options.weightDecay ?? 0.1 })
      e.adamwStep(gains, this.adam, { ...hp, weightDecay: 0 })
      let loss = 0
      for (const l of losses) loss += (await e.read(l))[0]!
      this.last = { loss, gradNorm, lr, step: this.steps }
      return loss
    } finally {
      for (const l of losses) l.dispose()
      e.zeroGrad(params)
    }
  }

  async exportOptimizerState(): Promise<OptimizerState> {
    const moments = new Map<string, { m: Float32Array; v: Float32Array }>()
    const tensors = this.model.parameterTensors
    for (let i = 0; i < tensors.length; i++) {
      const mv = this.adam.moments.get(tensors[i]!)
      if (mv !== undefined) moments.set(this.model.infos[i]!.name, { m: await this.engine.read(mv.m), v: await this.engine.read(mv.v) })
    }
    return { step: this.steps, moments }
  }

  importOptimizerState(state: OptimizerState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new TrainerInputError({ reason: `bad optimizer step ${state.step}` })
    const staged = new Map<Tensor, { m: Tensor; v: Tensor }>()
    try {
      for (const [name, { m, v }] of state.moments) {
        const p = this.model.parameter(name)
        if (m.length !== p.size || v.length !== p.size) {
          throw new TrainerInputError({ reason: `moments of "${name}" have ${m.length}/${v.length} values, need ${p.size}` })
        }
        staged.set(p, { m: this.engine.fromArray(m, p.shape), v: this.engine.fromArray(v, p.shape) })
      }
    } catch (error) {
      for (const mv of staged.values()) {
        mv.m.dispose()
        mv.v.dispose()
      }
      throw error
    }
    this.adam.dispose()
    for (const [p, mv] of staged) this.adam.moments.set(p, mv)
    this.steps = state.step
  }

  dispose(): void {
    this.adam.dispose()
    this.model.dispose()
  }
}
