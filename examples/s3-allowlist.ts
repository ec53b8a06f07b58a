/**
 * A run whose updates travel through S3 (or R2) and whose peers are named in advance: only the
 * hotkeys on the allow-list are gathered, scored or listed. The list comes from ALLOWED_HOTKEYS
 * (ss58 addresses, comma-separated); without it, the in-process swarm's first two peers, so that
 * `--peers 3` shows a third peer that trains but is never aggregated.
 *
 *   bun run examples/s3-allowlist.ts --transport s3 --peers 3 --windows 4 --backend cpu   # a local S3 server
 *   S3_ENDPOINT=... bun run examples/s3-allowlist.ts peer --transport s3 --secret ...     # a node against a real store
 */
import { Effect } from "effect"
import { identityFromSecret } from "@covenant/chain"
import { derive, debug, defineRun } from "@covenant/dsl"
import { runMain } from "@covenant/runtime"

/** The hotkey the in-process swarm gives its peer `index` (a dev URI; never use one for a real run). */
const swarmPeer = (index: number) => Effect.map(identityFromSecret(`//covenant-swarm-peer-${index}`), (id) => id.hotkey.address)

const run = defineRun((args) =>
  Effect.gen(function* () {
    const listed = args.env["ALLOWED_HOTKEYS"]?.split(",").map((h) => h.trim()).filter((h) => h !== "") ?? []
    const hotkeys = listed.length > 0 ? listed : [yield* swarmPeer(0), yield* swarmPeer(1)]
    return yield* derive(debug(), {
      name: "s3-allowlist",
      infrastructure: {
        transport: {
          kind: "s3",
          endpoint: args.env["S3_ENDPOINT"] ?? "http://127.0.0.1:9000",
          region: args.env["S3_REGION"] ?? "auto",
          bucket: "covenant-s3-allowlist",
          forcePathStyle: true,
          // Names of environment variables, never the keys themselves.
          credentials: { accessKeyIdEnv: "S3_ACCESS_KEY_ID", secretAccessKeyEnv: "S3_SECRET_ACCESS_KEY" },
        },
      },
      participation: { admission: { kind: "allowList", hotkeys: [hotkeys[0]!, ...hotkeys.slice(1)] } },
    })
  }))

export default run

if (import.meta.main) await runMain(run)
