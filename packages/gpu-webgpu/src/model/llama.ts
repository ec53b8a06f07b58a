/**
 * The LLaMA decoder (HF LlamaForCausalLM semantics) on an Engine.
 *
 * Per layer: h = x + o(attn(rope(q(n1(x))), rope(k(n1(x))), v(n1(x))));
 *            x' = h + down(silu(gate(n2(h))) * up(n2(h))); then the final norm and lm_head
 * (the embedding matrix when tied). Linear weights are stored as torch does, [out, in], so every
 * projection is `x @ W^T`.
 */
import type { Engine } from "../engine.ts"
import type { MatmulPrecision } from "../ops/matmul.ts"
import type { Tensor } from "../tensor.ts"
import { Data } from "effect"
import { llamaParameters } from "./parameters.ts"
import type { ParameterInfo } from "./parameters.ts"
import { headDim } from "@covenant/dsl"
import type { LlamaSpec } from "./spec.ts"

/** Token ids or a parameter map that do not fit the model. */
export class ModelInputError extends Data.TaggedError("ModelInputError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

export const ignoreIndex = -100

/** Next-token targets for ids [B, T]: position t predicts ids[t + 1]; the last position is ignored. */
export const shiftedTargets = (ids: Int32Array, batch: number, seqLen: number): Int32Array => {
  const targets = new Int32Array(batch * seqLen).fill(ignoreIndex)
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t + 1 < seqLen; t++) targets[b * seqLen + t] = ids[b * seqLen + t + 1]!
  }
  return targets
}

export interface LlamaOptions {
  /**
   * Operand precision of the linear layers' matmuls (projections, MLP, lm_head), forward and
   * backward: "f16" needs a backend with `features.shaderF16`. Parameters, activations between
   * ops, gradients and attention stay f32. Default "f32".
   */
  readonly precision?: MatmulPrecision
}

export class LlamaModel {
  private constructor(
    readonly engine: Engine,
    readonly spec: LlamaSpec,
    readonly infos: ReadonlyArray<ParameterInfo>,
    private readonly tensors: ReadonlyMap<string, Tensor>,
    readonly precision: MatmulPrecision
  ) {}

  /** Uploads `parameters` (HF names, as from `initLlamaParameters` or a checkpoint) as trainable leaves. */
  static create(engine: Engine, spec: LlamaSpec, parameters: ReadonlyMap<string, Float32Array>, options: LlamaOptions = {}): LlamaModel {
    const precision = options.precision ?? "f32"
    if (precision === "f16" && !engine.backend.features.shaderF16) {
      throw new ModelInputError({ reason: `precision f16 needs the shaderF16 feature, which ${engine.backend.name} does not have` })
    }
    const infos = llamaParameters(spec)
    const tensors = new Map<string, Tensor>()
    for (const { name, shape } of infos) {
      const data = parameters.get(name)
      const size = shape.reduce((a, b) => a * b, 1)
      if (data === undefined || data.length !== size) {
        for (const t of tensors.values()) t.dispose()
        throw new ModelInputError({ reason: data === undefined ? `missing parameter "${name}"` : `parameter "${name}" has ${data.length} values, needs ${size}` })
      }
      tensors.set(name, engine.fromArray(data, shape, { requiresGrad: true }))
    }
    return new LlamaModel(engine, spec, infos, tensors, precision)
  }

  /** The trainable tensors in `llamaParameters` order. */
  get parameterTensors(): ReadonlyArray<Tensor> {
    return this.infos.map((p) => this.tensors.get(p.name)!)
  }

  parameter(name: string): Tensor {
    const t = this.tensors.get(name)
    if (t === undefined) throw new ModelInputError({ reason: `no parameter "${name}"` })
    return t
  }

  private checkIds(ids: Int32Array, batch: number, seqLen: number): void {
    if (!Number.isInteger(batch) || !Number.isInteger(seqLen) || batch < 1 || seqLen < 1 || ids.length !== batch * seqLen) {
      throw new ModelInputError({ reason: `ids has ${ids.length} values for shape [${batch}, ${seqLen}]` })
    }
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      if (id < 0 || id >= this.spec.vocabSize) {
        throw new ModelInputError({ reason: `token id ${id} at ${i} is outside the vocabulary [0, ${this.spec.vocabSize})` })
      }
    }
  }

  /**
   * Logits [B*T, vocab] for ids [B, T] (row b*T + t is position t of sequence b). Call inside
   * `engine.tidy`: the uploaded ids and (without a backward) the activations are freed by the scope.
   */
  forward(ids: Int32Array, batch: number, seqLen: number): Tensor {
    this.checkIds(ids, batch, seqLen)
    const e = this.engine
    const s = this.spec
    const hd = headDim(s)
    const n = batch * seqLen
    const w = (name: string) => this.parameter(name)
    const linear = (x: Tensor, name: string) => e.matmul(x, w(name), { transB: true, precision: this.precision })
    const idTensor = e.fromArray(ids, [n])
    let x = e.embedding(w("model.embed_tokens.weight"), idTensor)
    for (let i = 0; i < s.nLayers; i++) {
      const p = `model.layers.${i}`
      const h = e.rmsnorm(x, w(`${p}.input_layernorm.weight`), s.normEps)
      const q = e.rope(e.reshape(linear(h, `${p}.self_attn.q_proj.weight`), [batch, seqLen, s.nHeads, hd]), s.ropeTheta)
      const k = e.rope(e.reshape(linear(h, `${p}.self_attn.k_proj.weight`), [batch, seqLen, s.nKvHeads, hd]), s.ropeTheta)
      const v = e.reshape(linear(h, `${p}.self_attn.v_proj.weight`), [batch, seqLen, s.nKvHeads, hd])
      const attn = e.reshape(e.attention(q, k, v), [n, s.dim])
      x = e.add(x, linear(attn, `${p}.self_attn.o_proj.weight`))
      const h2 = e.rmsnorm(x, w(`${p}.post_attention_layernorm.weight`), s.normEps)
      const mlp = e.swiglu(linear(h2, `${p}.mlp.gate_proj.weight`), linear(h2, `${p}.mlp.up_proj.weight`))
      x = e.add(x, linear(mlp, `${p}.mlp.down_proj.weight`))
    }
    const final = e.rmsnorm(x, w("model.norm.weight"), s.normEps)
    return linear(final, s.tiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight")
  }

  /** Mean next-token cross-entropy over ids [B, T] (B*(T-1) predictions), a scalar tensor. */
  loss(ids: Int32Array, batch: number, seqLen: number): Tensor {
    return this.lossFromLogits(this.forward(ids, batch, seqLen), ids, batch, seqLen)
  }

  /** The loss of `loss` from logits already computed by `forward` for the same ids. */
  lossFromLogits(logits: Tensor, ids: Int32Array, batch: number, seqLen: number): Tensor {
    const targets = this.engine.fromArray(shiftedTargets(ids, batch, seqLen), [batch * seqLen])
    return this.engine.crossEntropy(logits, targets, ignoreIndex)
  }

  /** Copies every parameter to the host, by HF name. */
  async readParameters(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>()
    for (const { name } of this.infos) out.set(name, await this.engine.read(this.parameter(name)))
    return out
  }

  /** Overwrites parameters (all or some, by HF name) in place. */
  writeParameters(parameters: ReadonlyMap<string, Float32Array>): void {
    for (const [name, data] of parameters) {
      const t = this.parameter(name)
      if (data.length !== t.shape.reduce((a, b) => a * b, 1)) {
        throw new ModelInputError({ reason: `parameter "${name}" has ${data.length} values, needs ${t.shape.join("x")}` })
      }
      this.engine.write(t, data)
    }
  }

  dispose(): void {
    for (const t of this.tensors.values()) {
      if (t.grad !== null) t.grad.dispose()
      t.dispose()
    }
  }
}
