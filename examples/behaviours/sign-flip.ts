/**
 * A peer behaviour (see packages/runtime/README.md, "Peer behaviours"): this peer trains
 * honestly but uploads the negation of its update. Use it in a swarm with
 *
 *   bun packages/runtime/bin/covenant.ts swarm --adversary examples/behaviours/sign-flip.ts=1
 */
import { Effect } from "effect"
import { defineBehaviour, Outgoing } from "@covenant/runtime"

export default defineBehaviour({
  name: "example-sign-flip",
  description: "uploads the negated honest update (lookup and shift negated)",
  publish: (_ctx, honest) =>
    Effect.succeed(
      Outgoing.publish({
        meta: honest.meta,
        tensors: honest.tensors.map((t) =>
          t.coding === "f32"
            ? { coding: "f32", dense: { ...t.dense, values: t.dense.values.map((x) => -x) } }
            : { coding: t.coding, update: { ...t.update, shift: Math.fround(-t.update.shift), lookup: t.update.lookup.map((x) => -x) } },
        ),
      }),
    ),
})
