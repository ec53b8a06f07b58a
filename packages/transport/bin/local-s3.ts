/**
 * local-s3: a local S3 store (s3rver on 127.0.0.1) for a run on one machine, with the second
 * key pair the nodes commit as their read keys; prints the S3_* exports the nodes and the peer
 * page's server take. Stop with Ctrl-C (the objects stay in --dir).
 *
 *   bun packages/transport/bin/local-s3.ts [--port 4568] [--dir .covenant/s3]
 */
import { resolve } from "node:path"
import { LocalS3 } from "../src/testing/LocalS3.ts"

const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const s3 = new LocalS3({ port: Number(flag("port") ?? "4568"), directory: resolve(flag("dir") ?? ".covenant/s3") })
await s3.start()
const c = s3.config()
const read = s3.readKeys()
console.log(`# s3rver on ${c.endpoint}; in each node's terminal:
export S3_ENDPOINT=${c.endpoint} S3_REGION=${c.region} S3_ACCESS_KEY_ID=${c.accessKeyId} S3_SECRET_ACCESS_KEY=${c.secretAccessKey} \\
       S3_READ_ACCESS_KEY_ID=${read.accessKeyId} S3_READ_SECRET_ACCESS_KEY=${read.secretAccessKey}`)
process.on("SIGINT", () => void s3.stop().then(() => process.exit(0)))
