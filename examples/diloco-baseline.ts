/**
 * The paper's baseline for Covenant-72B: the same run with full-precision pseudo-gradients (no
 * compression) and outer Nesterov SGD at lr 0.6 (`dilocoBaseline`), so its loss and bytes on the
 * wire can be set against SparseLoCo's. Executed directly it runs like covenant72b.ts: scaled to
 * this machine as an in-process swarm (`--help` for the flags).
 *
 *   bun run examples/diloco-baseline.ts --peers 2 --windows 8
 */
import { Effect } from "effect"
import { covenant72b, defineRun, dilocoBaseline } from "@covenant/dsl"
import { runMain } from "@covenant/runtime"

const run = defineRun(() => Effect.succeed(dilocoBaseline(covenant72b())))

export default run

if (import.meta.main) await runMain(run)
