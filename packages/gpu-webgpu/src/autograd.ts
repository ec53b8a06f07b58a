/**
 * Reverse-mode autograd: ONE table of derivative rules (each rule lives beside its op in
 * src/ops/<op>.ts) and the backward pass that walks the recorded graph.
 */
import type { DerivativeRule, Runtime, Tensor } from "./tensor.ts"
import { TensorError } from "./tensor.ts"
import { add, addRule, mulRule, subRule } from "./ops/binary.ts"
import { scaleRule } from "./ops/scale.ts"
import { reduceRule } from "./ops/reduce.ts"
import { reshapeRule } from "./ops/reshape.ts"
import { matmulRule } from "./ops/matmul.ts"
import { embeddingRule } from "./ops/embedding.ts"
import { rmsnormRule } from "./ops/rmsnorm.ts"
import { ropeRule } from "./ops/rope.ts"
import { attentionRule } from "./ops/attention.ts"
import { siluRule } from "./ops/silu.ts"
import { swigluRule } from "./ops/swiglu.ts"
import { softmaxRule } from "./ops/softmax.ts"
import { crossEntropyRule } from "./ops/crossEntropy.ts"
import { axpby, fill } from "./ops/util.ts"

export const derivatives: Readonly<Record<string, DerivativeRule>> = {
  add: addRule,
  sub: subRule,
  mul: mulRule,
  scale: scaleRule,
  sum: reduceRule,
  mean: reduceRule,
  reshape: reshapeRule,
  matmul: matmulRule,
  embedding: embeddingRule,
  rmsnorm: rmsnormRule,
  rope: ropeRule,
  attention: attentionRule,
  silu: siluRule,
  swiglu: swigluRule,
  softmax: softmaxRule,
  crossEntropy: crossEntropyRule
}

/** Tensors reachable from `root`, inputs before the tensors computed from them. */
const topoOrder = (root: Tensor): Tensor[] => {
  const order: Tensor[] = []
  const seen = new Set<Tensor>()
  const stack: Array<{ t: Tensor; expanded: boolean }> = [{ t: root, expanded: false }]
  while (stack.length > 0) {
    const top = stack.pop()!
    if (top.expanded) {
      order.push(top.t)
      continue
    }
    if (seen.has(top.t)) continue
    seen.add(top.t)
    stack.push({ t: top.t, expanded: true })
    for (const i of top.t.node?.inputs ?? []) if (!seen.has(i) && i.requiresGrad) stack.push({ t: i, expanded: false })
  }
  return order
}

/**
 * Fills `.grad` of every requiresGrad leaf reachable from `loss` (adding to an existing grad),
 * then frees the graph: intermediate outputs and saved tensors are disposed, `loss` is kept.
 */
export const backward = (rt: Runtime, loss: Tensor): void => {
  loss.assertLive()
  if (!loss.requiresGrad) throw new TensorError({ message: "backward: loss does not depend on any tensor with requiresGrad" })
  const order = topoOrder(loss)
  const grads = new Map<Tensor, Tensor>()
  rt.noGrad(() => {
    const seed = rt.empty(loss.shape, "f32", loss)
    fill(rt, seed, 1)
    grads.set(loss, seed)
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const t = order[idx]!
      const g = grads.get(t)
      if (g === undefined) continue
      grads.delete(t)
      const node = t.node
      if (node === null) {
        accumulateLeaf(rt, t, g)
        continue
      }
      const rule = derivatives[node.op]
      if (rule === undefined) throw new TensorError({ message: `backward: no derivative rule for ${node.op}` })
      const outs = rule(rt, g, node, t)
      const used = new Set<Tensor>()
      node.inputs.forEach((input, i) => {
        const c = outs[i]
        if (c === null || c === undefined || !input.requiresGrad) return
        // A rule may hand back g itself or the same tensor twice: give each slot its own handle.
        const mine = c === g || used.has(c) ? rt.view(c, input.shape) : c
        used.add(c)
        const prev = grads.get(input)
        if (prev === undefined) {
          grads.set(input, mine)
        } else {
          // Out of place, because gradient handles may share storage.
          grads.set(input, add(rt, prev, mine))
          prev.dispose()
          mine.dispose()
        }
      })
      for (const c of outs) if (c !== null && c !== g && !used.has(c)) c.dispose()
      g.dispose()
    }
  })
  for (const g of grads.values()) g.dispose()
  for (const t of order) {
    const node = t.node
    if (node === null) continue
    for (const s of node.saved) s.dispose()
    // constants (ids, targets, masks) that a tidy scope handed to this graph
    for (const x of node.inputs) if (x.graphOwned && x.isLeaf && !x.requiresGrad) x.dispose()
    t.node = null
    if (t !== loss) t.dispose()
  }
}

/** Stores (or adds) a leaf's gradient in storage the leaf owns alone, outliving tidy scopes. */
const accumulateLeaf = (rt: Runtime, leaf: Tensor, g: Tensor): void => {
  if (leaf.grad === null) {
    const own = g.storage.refs === 1 && g.storage.chunkBytes === leaf.storage.chunkBytes ? g : copyLike(rt, g, leaf)
    if (own !== g) g.dispose()
    leaf.grad = own
    rt.keep(leaf.grad)
  } else {
    axpby(rt, g, leaf.grad, 1, 1)
    g.dispose()
  }
}

const copyLike = (rt: Runtime, g: Tensor, leaf: Tensor): Tensor => {
  const out = rt.empty(leaf.shape, "f32", leaf)
  axpby(rt, g, out, 1, 0)
  return out
}
