/**
 * covenant: one node of a run per process, a whole in-process swarm, a run's plan, token shards,
 * the chain's metagraph. `bun packages/runtime/bin/covenant.ts --help` (and `<command> --help`).
 * Every flag is defined once, in src/cli/flags.ts.
 */
import { runMain } from "../src/cli/main.ts"

await runMain()
